/**
 * Offline evaluation (`npm run eval`): generate a seeded synthetic history, replay it through the
 * scoring module, the design document's literal formula and the merchant's default order, and print
 * a Markdown table. `npm run eval -- --tune` searches the model's weights on another seed;
 * `--seed N`, `--customers N`, `--check` (exit 1 when a goal is missed), `--floor` (exit 1 below the
 * regression floor CI holds the model to), `--segments` (top-1 by history length, context switch and
 * habit change), `--bound` (the Bayes-optimal learner, ~1 min), `--seeds 1,2,3` (the headline figures
 * on several seeds, to show how much they move), `--sensitivity` (the population's shape varied one
 * parameter at a time, with the bound; ~2 min).
 */
import { DEFAULT_WEIGHTS, type ScoringWeights } from "../../src/personalization/weights";
import { bayesBound } from "./bound";
import { DEFAULT_POPULATION, generate, type Population } from "./generate";
import { summarize } from "./metrics";
import { type Ranker, replay, type Slice } from "./replay";

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const SEED = flag("--seed", 1);
const CUSTOMERS = flag("--customers", 6000);

/** The goals, and the floor CI holds the model to (below the goals: it guards the measured 1.40× (1.398×) against regressions). */
const GOAL = { ratio: 1.5, ece: 0.05 };
const FLOOR = { ratio: 1.35, ece: 0.05 };

const LABELS: Record<Ranker, string> = {
  model: "Scoring module",
  literal: "Design doc's literal formula",
  default: "Merchant default order",
  oracle: "Ceiling: the generator's own habits (knows each customer)",
};
const SLICES: Record<Slice, string> = { all: "all payments", with_history: "payments with earlier history", sparse: "customers with 1–3 payments" };
const fmt = (x: number, digits = 3) => (Number.isFinite(x) ? x.toFixed(digits) : "–");

/** One replay of one population, with the headline summaries (model and literal formula, all payments). */
function evaluate(seed: number, customers: number, population: Partial<Population> = {}) {
  const history = generate(seed, customers, population);
  const result = replay(history.customers, history.events);
  return { ...history, result, model: summarize(result.predictions.model.all), literal: summarize(result.predictions.literal.all) };
}

function report(): void {
  const started = Date.now();
  const { customers, events, result, model, literal } = evaluate(SEED, CUSTOMERS);
  const lines: string[] = [];
  lines.push(`Synthetic history: seed ${SEED}, ${customers.length} customers, ${events.length} payments, ${countSparse(events)} customers with 1–3 payments.`, "");
  for (const slice of Object.keys(SLICES) as Slice[]) {
    const n = result.predictions.model[slice].length;
    lines.push(`**${SLICES[slice]}** (n = ${n})`, "", "| ranker | top-1 | MRR | log loss | ECE |", "| --- | ---: | ---: | ---: | ---: |");
    for (const ranker of Object.keys(LABELS) as Ranker[]) {
      const s = summarize(result.predictions[ranker][slice]);
      lines.push(`| ${LABELS[ranker]} | ${fmt(s.top1)} | ${fmt(s.mrr)} | ${fmt(s.logLoss)} | ${fmt(s.ece)} |`);
    }
    lines.push("");
  }
  if (args.includes("--segments")) {
    lines.push("**where the model loses** (top-1 by segment)", "", "| segment | n | model | literal | ceiling | model/ceiling |", "| --- | ---: | ---: | ---: | ---: | ---: |");
    for (const [segment, preds] of [...result.segments.model].sort(([a], [b]) => a.localeCompare(b))) {
      const m = summarize(preds).top1, l = summarize(result.segments.literal.get(segment)!).top1, o = summarize(result.segments.oracle.get(segment)!).top1;
      lines.push(`| ${segment} | ${preds.length} | ${fmt(m)} | ${fmt(l)} | ${fmt(o)} | ${fmt(m / o, 2)} |`);
    }
    lines.push("");
  }
  const ratio = model.top1 / literal.top1;
  if (args.includes("--bound")) {
    // What any learner could reach from the same histories (see bound.ts); slow, so not in the default run.
    const b = bayesBound(customers, events);
    const cold = summarize(result.segments.model.get("history 0") ?? []).top1;
    const withServiceColdStart = serviceBound(b, cold, events.length);
    lines.push(
      "**Bound: Bayes-optimal learner under the generator's own habit model** (top-1)",
      "",
      "| | all | with history | first payment | vs literal |",
      "| --- | ---: | ---: | ---: | ---: |",
      `| Bayes-optimal, first payment ranked by the habit population | ${fmt(b.all)} | ${fmt(b.withHistory)} | ${fmt(b.firstPayment)} | ${fmt(b.all / literal.top1, 2)}× |`,
      `| Bayes-optimal, first payment answered as the service must (\`no_history\`) | ${fmt(withServiceColdStart)} | ${fmt(b.withHistory)} | ${fmt(cold)} | ${fmt(withServiceColdStart / literal.top1, 2)}× |`,
      "",
    );
  }
  lines.push(`Top-1 vs literal formula: ${fmt(ratio, 2)}× (goal ≥ ${GOAL.ratio}×); ECE ${fmt(model.ece)} (goal ≤ ${GOAL.ece}). ${((Date.now() - started) / 1000).toFixed(1)} s.`);
  console.log(lines.join("\n"));
  // `--check` turns the goals into a gate; `--floor` (CI) the regression floor.
  if (args.includes("--check") && !(ratio >= GOAL.ratio && model.ece <= GOAL.ece)) process.exitCode = 1;
  if (args.includes("--floor") && !(ratio >= FLOOR.ratio && model.ece <= FLOOR.ece)) {
    console.error(`Below the regression floor: top-1 ratio ${fmt(ratio, 2)}× (floor ${FLOOR.ratio}×), ECE ${fmt(model.ece)} (floor ${FLOOR.ece}).`);
    process.exitCode = 1;
  }
}

/** The bound when first payments get the service's `no_history` answer (the model's own top-1 on them). */
function serviceBound(b: { withHistory: number; firstPayments: number }, coldTop1: number, payments: number): number {
  return (b.withHistory * (payments - b.firstPayments) + coldTop1 * b.firstPayments) / payments;
}

/**
 * How the comparison depends on the population: each row changes one parameter of the documented
 * generator. Shows where a 1.5× goal is within reach of any learner (the bound) and where not.
 */
function sensitivity(): void {
  const variants: [string, Partial<Population>][] = [
    ["documented generator", {}],
    ["fewer sparse customers (20 % with 1–3 payments)", { sparseShare: 0.2 }],
    ["more sparse customers (70 %)", { sparseShare: 0.7 }],
    ["devices mixed evenly (mobile share 40–60 %)", { mobileShare: [0.4, 0.6] }],
    ["devices one-sided (mobile share 0–100 %)", { mobileShare: [0, 1] }],
    ["less noise (0–2 %)", { noise: [0, 0.02] }],
    ["more noise (8–15 %)", { noise: [0.08, 0.15] }],
    ["no habit changes", { changeShare: 0 }],
    ["more habit changes (60 %)", { changeShare: 0.6 }],
  ];
  const n = Math.min(CUSTOMERS, 3000);
  const lines = [`Seed ${SEED}, ${n} customers per row; bound = Bayes-optimal learner with the service's no_history answer.`, "", "| population | model top-1 | literal top-1 | ratio | bound top-1 | bound ratio | model ECE |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"];
  for (const [label, change] of variants) {
    const population: Population = { ...DEFAULT_POPULATION, ...change };
    const { customers, events, result, model, literal } = evaluate(SEED, n, population);
    const bound = serviceBound(bayesBound(customers, events, 300, population), summarize(result.segments.model.get("history 0") ?? []).top1, events.length);
    lines.push(`| ${label} | ${fmt(model.top1)} | ${fmt(literal.top1)} | ${fmt(model.top1 / literal.top1, 2)}× | ${fmt(bound)} | ${fmt(bound / literal.top1, 2)}× | ${fmt(model.ece)} |`);
  }
  console.log(lines.join("\n"));
}

/** The headline figures on several seeds: how much of a difference between two runs is the seed's. */
function seeds(list: number[]): void {
  const lines = ["| seed | payments | model top-1 | literal top-1 | ratio | model ECE |", "| ---: | ---: | ---: | ---: | ---: | ---: |"];
  const ratios: number[] = [];
  for (const seed of list) {
    const { events, model, literal } = evaluate(seed, CUSTOMERS);
    ratios.push(model.top1 / literal.top1);
    lines.push(`| ${seed} | ${events.length} | ${fmt(model.top1)} | ${fmt(literal.top1)} | ${fmt(model.top1 / literal.top1, 2)}× | ${fmt(model.ece)} |`);
  }
  const mean = ratios.reduce((a, b) => a + b, 0) / ratios.length;
  lines.push("", `Ratio over ${ratios.length} seeds: mean ${fmt(mean, 3)}×, min ${fmt(Math.min(...ratios), 3)}×, max ${fmt(Math.max(...ratios), 3)}×.`);
  console.log(lines.join("\n"));
}

function countSparse(events: readonly { customer: number }[]): number {
  const n = new Map<number, number>();
  for (const e of events) n.set(e.customer, (n.get(e.customer) ?? 0) + 1);
  return [...n.values()].filter((k) => k <= 3).length;
}

/** Coordinate search on log loss (a proper score: it rewards accuracy and calibration together). */
function tune(): void {
  const { customers, events } = generate(SEED + 1000, Math.min(CUSTOMERS, 3000));
  const grid: Partial<Record<keyof ScoringWeights, number[]>> = {
    temperature: [0.8, 0.9, 1, 1.1, 1.25, 1.4, 1.6],
    prior_strength: [0.5, 1, 1.5, 2, 3, 5],
    context_strength: [0.5, 1, 2, 3, 5],
    device_weight: [0.5, 0.75, 1, 1.25, 1.5, 2],
    amount_weight: [0.5, 0.75, 1, 1.25, 1.5, 2],
    country_weight: [0, 0.25, 0.5, 1],
    popularity_strength: [5, 20, 50, 200],
    favorite_boost: [0, 0.5, 1, 2],
    default_boost: [0, 0.5, 1, 2],
    long_memory: [0, 0.05, 0.1, 0.2],
    last_used_boost: [-0.25, 0, 0.25],
  };
  const w: Record<string, number> = { ...DEFAULT_WEIGHTS };
  const loss = (weights: Record<string, number>) => summarize(replay(customers, events, weights, { modelOnly: true }).predictions.model.all).logLoss;
  let best = loss(w);
  for (let round = 0; round < 2; round++) {
    for (const [key, values] of Object.entries(grid)) {
      for (const v of values) {
        const candidate = { ...w, [key]: v };
        const l = loss(candidate);
        if (l < best - 1e-5) {
          best = l;
          w[key] = v;
        }
      }
      console.log(`${key} = ${w[key]} (log loss ${best.toFixed(4)})`);
    }
  }
  console.log(JSON.stringify(w, null, 2));
}

const seedList = args.indexOf("--seeds");
if (args.includes("--tune")) tune();
else if (args.includes("--sensitivity")) sensitivity();
else if (seedList >= 0) seeds((args[seedList + 1] ?? "").split(",").map(Number).filter(Number.isInteger));
else report();
