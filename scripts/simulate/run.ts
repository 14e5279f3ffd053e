/**
 * Closed-loop simulation (`npm run simulate`): the real worker (wrangler dev, fresh local state),
 * one merchant with a holdout, the eval generator's customers with their pre-experiment history,
 * then rounds of checkouts: GET /v1/personalize/methods with the customer's context, the customer
 * reacts to the order shown (behaviour.ts), pays → POST /v1/personalize/feedback with the
 * decision_id; abandoned checkouts send nothing. After the queues drain and the rollup cron has
 * run, GET /v1/analytics/summary gives the lift; the table goes to stdout and scripts/simulate/results/.
 *
 * Flags: --seed N (1), --customers N (500), --rounds N (6), --holdout P (20), --shop P (0.8: chance a
 * customer checks out in a round), --concurrency N (12), --no-history, --check (exit 1 unless the
 * treatment converts better with p < 0.05, has the higher top-1 rate, SRM does not warn and every
 * request was counted).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BEHAVIOUR, react } from "./behaviour";
import { type Cluster, clusteredLiftCi } from "./bootstrap";
import { buildPopulation, type Checkout, HISTORY_DAYS, MERCHANT_METHODS, ROUND_DAYS, roundCheckouts, streamFor } from "./population";
import { SIM_SECRETS, startWorker, type Worker } from "./worker";

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const CONFIG = {
  seed: flag("--seed", 1),
  customers: flag("--customers", 500),
  rounds: flag("--rounds", 6),
  holdout_percent: flag("--holdout", 20),
  shop_probability: flag("--shop", 0.8),
  concurrency: flag("--concurrency", 12),
  history: !args.includes("--no-history"),
};
const MERCHANT_ID = "m_simulation";
const OUT_DIR = join(process.cwd(), "scripts", "simulate", "results");
const ROLLUP_CRON = "*/5 * * * *";

type Arm = "treatment" | "holdout";
interface Tally {
  decisions: number;
  conversions: number;
  top1: number;
  rr: number;
  habitualFirst: number;
  abandoned: number;
}
const emptyTally = (): Tally => ({ decisions: 0, conversions: 0, top1: 0, rr: 0, habitualFirst: 0, abandoned: 0 });

const say = (line: string) => console.error(`[simulate] ${line}`);

/** The code the numbers belong to: HEAD, and whether the worker's sources differed from it. */
function codeVersion(): string {
  try {
    const git = (...a: string[]) => execFileSync("git", a, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    const dirty = git("status", "--porcelain", "--", "src", "migrations", "wrangler.toml") !== "";
    return `commit ${git("rev-parse", "--short", "HEAD")}${dirty ? " with uncommitted changes to src/ or migrations/" : ""}`;
  } catch {
    return "unknown commit";
  }
}

async function call(w: Worker, method: string, path: string, opts: { key?: string; admin?: boolean; body?: unknown } = {}): Promise<unknown> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (opts.key) headers["x-api-key"] = opts.key;
  if (opts.admin) headers.authorization = `Bearer ${SIM_SECRETS.ADMIN_TOKEN}`;
  const init = { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), signal: AbortSignal.timeout(30_000) };
  let res: Response;
  try {
    res = await fetch(w.url + path, init);
  } catch {
    res = await fetch(w.url + path, { ...init, signal: AbortSignal.timeout(30_000) }); // one retry of a dropped loopback connection
  }
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path.split("?")[0]} → ${res.status}: ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

/** Runs `task` over `items` with at most `n` in flight. */
async function pool<T>(items: readonly T[], n: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await task(items[next++]!);
  }));
}

const customerId = (i: number) => `cus_sim_${i}`;

async function main(): Promise<void> {
  const started = Date.now();
  const code = codeVersion();
  const pop = buildPopulation(CONFIG.seed, CONFIG.customers, CONFIG.rounds);
  const history = CONFIG.history ? pop.history : [];
  say(`seed ${CONFIG.seed}: ${pop.customers.length} customers, ${history.length} payments of history, ${CONFIG.rounds} rounds, holdout ${CONFIG.holdout_percent} %`);
  const worker = await startWorker(say);
  try {
    say(`wrangler dev at ${worker.url}`);
    const summary = await simulate(worker, pop, history);
    report(summary, history.length, code, (Date.now() - started) / 1000);
  } finally {
    await worker.stop();
  }
}

async function simulate(w: Worker, pop: ReturnType<typeof buildPopulation>, history: typeof pop.history) {
  const runStart = Date.now();
  await call(w, "POST", "/v1/admin/merchants", {
    admin: true,
    body: {
      merchant_id: MERCHANT_ID, name: "Simulation Shop", tier: "scale", methods: MERCHANT_METHODS,
      holdout_percent: CONFIG.holdout_percent, rate_limit: { requests_per_hour: 10_000_000, burst: 1_000_000 },
    },
  });
  const { key } = (await call(w, "POST", `/v1/admin/merchants/${MERCHANT_ID}/keys`, { admin: true, body: { type: "secret" } })) as { key: string };

  // Explicit preferences of the generator's customers (default method, favourites, exclusions).
  const withPrefs = pop.customers.filter((c) => c.preferences.default_method || c.preferences.favorite_methods.length || c.preferences.excluded_methods.length);
  await pool(withPrefs, CONFIG.concurrency, async (c) => {
    await call(w, "PUT", "/v1/personalize/preferences", { key, body: { customer_id: customerId(c.id), merchant_id: MERCHANT_ID, ...c.preferences } });
  });

  // Pre-experiment history through the feedback API, as a merchant backend would import it.
  const batches: (typeof history)[] = [];
  for (let i = 0; i < history.length; i += 100) batches.push(history.slice(i, i + 100));
  await pool(batches, 4, async (batch) => {
    const events = batch.map((h) => ({
      customer_id: customerId(h.customer), method_id: h.method_id, amount: h.amount, currency: h.currency, device_type: h.device_type,
      location_country: h.country, occurred_at: new Date(runStart - h.ago_ms).toISOString(),
    }));
    await call(w, "POST", "/v1/personalize/feedback/batch", { key, body: { events } });
  });
  let feedbackSent = history.length;
  await drained(w, (d) => d.feedbackHandled >= feedbackSent, "history");
  say(`merchant ${MERCHANT_ID} ready: ${withPrefs.length} customers with preferences, ${w.drain.feedbackStored} history payments stored`);

  const tally: Record<Arm, Tally> = { treatment: emptyTally(), holdout: emptyTally() };
  const perRound: Record<Arm, Tally>[] = [];
  const perCustomer = new Map<number, { arm: Arm; t: Tally }>();
  let decisionsSent = 0;
  let degraded = 0;
  for (let round = 1; round <= CONFIG.rounds; round++) {
    const checkouts = roundCheckouts(pop, CONFIG.seed, round, CONFIG.shop_probability);
    const thisRound: Record<Arm, Tally> = { treatment: emptyTally(), holdout: emptyTally() };
    await pool(checkouts, CONFIG.concurrency, async (co: Checkout) => {
      const q = new URLSearchParams({ customer_id: customerId(co.customer), device_type: co.device_type, country: co.country, amount: String(co.amount), currency: co.currency });
      const answer = (await call(w, "GET", `/v1/personalize/methods?${q}`, { key })) as { methods: { method_id: string }[]; decision_id: string; fallback_reason?: string };
      decisionsSent += 1;
      if (answer.fallback_reason === "degraded") degraded += 1;
      const arm: Arm = answer.fallback_reason === "holdout" ? "holdout" : "treatment";
      const shown = answer.methods.map((m) => m.method_id);
      const outcome = react(streamFor(CONFIG.seed, co.customer, 1000 + round), co.habitual, shown);
      let mine = perCustomer.get(co.customer);
      if (!mine) perCustomer.set(co.customer, (mine = { arm, t: emptyTally() }));
      for (const t of [tally[arm], thisRound[arm], mine.t]) {
        t.decisions += 1;
        if (outcome.position === 1) t.habitualFirst += 1;
        if (!outcome.paid) t.abandoned += 1;
        else {
          const rank = shown.indexOf(outcome.method_id) + 1;
          t.conversions += 1;
          if (rank === 1) t.top1 += 1;
          t.rr += rank > 0 ? 1 / rank : 0;
        }
      }
      if (!outcome.paid) return;
      feedbackSent += 1;
      await call(w, "POST", "/v1/personalize/feedback", {
        key,
        body: {
          customer_id: customerId(co.customer), merchant_id: MERCHANT_ID, method_id: outcome.method_id, amount: co.amount, currency: co.currency,
          device_type: co.device_type, location_country: co.country, decision_id: answer.decision_id, occurred_at: new Date().toISOString(),
          event_id: `sim_${CONFIG.seed}_r${round}_c${co.customer}`,
        },
      });
    });
    perRound.push(thisRound);
    // The next round is a week later for the customers: their payments must be in their profiles.
    await drained(w, (d) => d.feedbackHandled >= feedbackSent, `round ${round}`);
    const r = (a: Arm) => `${a} ${thisRound[a].conversions}/${thisRound[a].decisions}`;
    say(`round ${round}: ${checkouts.length} checkouts, ${r("treatment")}, ${r("holdout")} converted`);
  }
  await drained(w, (d) => d.analyticsStored >= decisionsSent, "analytics queue");

  // Closed hours are read from rollups: run the rollup cron (the open hour is read from raw rows).
  const from = new Date(Math.floor(runStart / 3_600_000) * 3_600_000).toISOString();
  const expectedConversions = tally.treatment.conversions + tally.holdout.conversions;
  let summary: Summary | null = null;
  for (let attempt = 0; attempt < 20; attempt++) {
    const cron = await fetch(`${w.url}/__scheduled?${new URLSearchParams({ cron: ROLLUP_CRON })}`);
    if (!cron.ok) throw new Error(`/__scheduled → ${cron.status}: ${await cron.text()}`);
    const to = new Date(Date.now() + 60_000).toISOString();
    summary = (await call(w, "GET", `/v1/analytics/summary?${new URLSearchParams({ from, to })}`, { key })) as Summary;
    const got = summary.arms.treatment.decisions + summary.arms.holdout.decisions;
    const conv = summary.arms.treatment.conversions + summary.arms.holdout.conversions;
    if (got === decisionsSent && conv === expectedConversions) break;
    await new Promise((r) => setTimeout(r, 1_000));
  }
  // In customer order, so the seeded bootstrap does not depend on which request finished first.
  const clusters = (arm: Arm, pick: (t: Tally) => Cluster) =>
    [...perCustomer.entries()].sort(([a], [b]) => a - b).filter(([, c]) => c.arm === arm).map(([, c]) => pick(c.t));
  const conv = (t: Tally): Cluster => [t.conversions, t.decisions];
  const top1 = (t: Tally): Cluster => [t.top1, t.conversions];
  const clustered = {
    customers: { treatment: clusters("treatment", conv).length, holdout: clusters("holdout", conv).length },
    conversion_rate: clusteredLiftCi(clusters("treatment", conv), clusters("holdout", conv), CONFIG.seed),
    top1_rate: clusteredLiftCi(clusters("treatment", top1), clusters("holdout", top1), CONFIG.seed),
  };
  return { summary: summary!, tally, perRound, clustered, decisionsSent, degraded, feedbackSent, errors: w.drain.errors };
}

async function drained(w: Worker, done: Parameters<Worker["waitFor"]>[0], what: string): Promise<void> {
  if (!(await w.waitFor(done, 120_000))) throw new Error(`${what}: the queues did not drain within 120 s (${JSON.stringify(w.drain)})\n${w.tail()}`);
}

interface ArmSummary {
  decisions: number;
  conversions: number;
  conversion_rate: number | null;
  top1_rate: number | null;
  mrr: number | null;
  median_time_to_pay_ms: number | null;
}
interface Lift {
  relative: number | null;
  ci95: [number, number] | null;
  p_value: number | null;
}
interface Summary {
  from: string;
  to: string;
  holdout_percent: number;
  arms: Record<Arm, ArmSummary>;
  lift: { conversion_rate: Lift; top1_rate: Lift };
  srm: { expected_holdout_share: number; observed_holdout_share: number | null; p_value: number | null; warning: boolean };
  personalization_rate: number | null;
  fallbacks: Record<string, number>;
}

const num = (v: number | null | undefined, digits = 3) => (v === null || v === undefined ? "–" : v.toFixed(digits));
const pct = (v: number | null | undefined) => (v === null || v === undefined ? "–" : `${v >= 0 ? "+" : ""}${(v * 100).toFixed(1)} %`);
const pval = (p: number | null) => (p === null ? "–" : p < 0.0001 ? "< 0.0001" : p.toFixed(4));

function report(result: Awaited<ReturnType<typeof simulate>>, historyPayments: number, code: string, seconds: number): void {
  const { summary: s, tally, perRound } = result;
  const counted = s.arms.treatment.decisions + s.arms.holdout.decisions === result.decisionsSent
    && s.arms.treatment.conversions + s.arms.holdout.conversions === tally.treatment.conversions + tally.holdout.conversions;
  const localAgrees = (["treatment", "holdout"] as const).every((a) => s.arms[a].decisions === tally[a].decisions && s.arms[a].conversions === tally[a].conversions && s.arms[a].conversions > 0
    && Math.abs((s.arms[a].top1_rate ?? 0) - tally[a].top1 / tally[a].conversions) < 1e-3);
  const lines: string[] = [];
  lines.push(
    `Closed-loop simulation: seed ${CONFIG.seed}, ${CONFIG.customers} customers, ${CONFIG.rounds} rounds (shop probability ${CONFIG.shop_probability}), ` +
      `holdout ${CONFIG.holdout_percent} %, ${CONFIG.history ? `${historyPayments} payments of pre-experiment history (last ${HISTORY_DAYS} days)` : "no history"}; ` +
      `${result.decisionsSent} checkouts, ${result.feedbackSent - historyPayments} payments; worker at ${code}. GET /v1/analytics/summary (${s.from} – ${s.to}):`,
    "",
    "| arm | decisions | conversions | conversion rate | top-1 rate | MRR | habitual method shown first¹ |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  );
  for (const a of ["treatment", "holdout"] as const) {
    const x = s.arms[a];
    lines.push(`| ${a} | ${x.decisions} | ${x.conversions} | ${num(x.conversion_rate)} | ${num(x.top1_rate)} | ${num(x.mrr)} | ${num(tally[a].habitualFirst / Math.max(1, tally[a].decisions))} |`);
  }
  const ci = (c: [number, number] | null) => (c ? `${pct(c[0])} … ${pct(c[1])}` : "–");
  lines.push("", "| lift (treatment ÷ holdout − 1) | relative | 95 % CI (summary, delta method on ln R) | p-value | 95 % CI, customers resampled² |", "| --- | ---: | --- | ---: | --- |");
  for (const m of ["conversion_rate", "top1_rate"] as const) {
    const l = s.lift[m];
    lines.push(`| ${m} | ${pct(l.relative)} | ${ci(l.ci95)} | ${pval(l.p_value)} | ${ci(result.clustered[m])} |`);
  }
  lines.push(
    "",
    `SRM: expected holdout share ${num(s.srm.expected_holdout_share, 2)}, observed ${num(s.srm.observed_holdout_share, 4)}, p = ${pval(s.srm.p_value)} → ${s.srm.warning ? "⚠️ warning" : "no warning"}. ` +
      `Personalization rate ${num(s.personalization_rate)}; fallbacks ${JSON.stringify(s.fallbacks)}.`,
    "",
    "Conversion rate by round (the simulation's own tally; round r is r weeks into the customers' habit timeline):",
    "",
    `| arm | ${perRound.map((_, i) => `round ${i + 1}`).join(" | ")} |`,
    `| --- | ${perRound.map(() => "---:").join(" | ")} |`,
    ...(["treatment", "holdout"] as const).map((a) => `| ${a} | ${perRound.map((r) => num(r[a].conversions / Math.max(1, r[a].decisions))).join(" | ")} |`),
    "",
    `¹ Share of decisions whose first method was the customer's habitual method for that context (the simulation knows it; the API does not). ` +
      `Every decision and conversion sent was counted by the summary: ${counted ? "yes" : "NO"}; the summary agrees with the simulation's own tally per arm: ${localAgrees ? "yes" : "NO"}. ` +
      `${result.degraded} degraded answers; ${result.errors.length} error log lines. ${seconds.toFixed(0)} s.`,
    "",
    `² Not from the API: a bootstrap over customers (${result.clustered.customers.treatment} treatment, ${result.clustered.customers.holdout} holdout; 2,000 resamples) from the simulation's own tally. ` +
      "Each customer makes several decisions in one arm, which the delta method treats as independent.",
  );
  const markdown = lines.join("\n");
  console.log(markdown);
  mkdirSync(OUT_DIR, { recursive: true });
  writeFileSync(join(OUT_DIR, "latest.md"), markdown + "\n");
  writeFileSync(join(OUT_DIR, "latest.json"), JSON.stringify({
    code, config: { ...CONFIG, history_days: HISTORY_DAYS, round_days: ROUND_DAYS, behaviour: BEHAVIOUR },
    summary: s, tally, per_round: perRound, clustered_ci95: result.clustered, decisions_sent: result.decisionsSent, payments_sent: result.feedbackSent - historyPayments,
    history_payments: historyPayments, counted, local_agrees: localAgrees, degraded: result.degraded, errors: result.errors, seconds,
  }, null, 2) + "\n");
  say(`wrote ${join("scripts", "simulate", "results", "latest.md")} and latest.json`);
  if (args.includes("--check")) {
    const ok = counted && !s.srm.warning && (s.lift.conversion_rate.relative ?? 0) > 0 && (s.lift.conversion_rate.p_value ?? 1) < 0.05
      && (s.arms.treatment.top1_rate ?? 0) > (s.arms.holdout.top1_rate ?? 1);
    if (!ok) process.exitCode = 1;
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
