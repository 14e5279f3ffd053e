import type { SummaryResponse } from "../schemas/analytics";
import { FallbackReason } from "../schemas/personalization";
import type { FactName, FactRow } from "./facts";
import { histogramMedian, rate, relativeLift, sampleRatioMismatch } from "./stats";

/**
 * The summary of API.md §6 from fact rows (rollups and the open hour alike). Pure.
 * Conventions: only decisions with an arm (eligible customers) count in `arms`; a conversion whose
 * paid method was not in the decision's list has reciprocal rank 0 in `mrr`; AOV is the mean amount
 * of the arm's conversions that carried an amount and currency, rounded to a whole minor unit.
 */

type Arm = "treatment" | "holdout";
const ARMS: Arm[] = ["treatment", "holdout"];
const isArm = (a: unknown): a is Arm => a === "treatment" || a === "holdout";
const num = (v: string | number | undefined) => Number(v ?? 0);

interface ArmTotals {
  decisions: number;
  /** holdout_percent in force at the arm's decisions, summed in millionths of the share, and how many recorded one. */
  holdoutPpm: number;
  holdoutKnown: number;
  conversions: number;
  top1: number;
  rrSum: number;
  ttp: Map<number, number>;
}

function add<K>(map: Map<K, number>, key: K, n: number): void {
  map.set(key, (map.get(key) ?? 0) + n);
}

export function armTotals(facts: Pick<Record<FactName, FactRow[]>, "decisions" | "conversions" | "ttp">): Record<Arm, ArmTotals> {
  const totals = Object.fromEntries(ARMS.map((a) => [a, { decisions: 0, holdoutPpm: 0, holdoutKnown: 0, conversions: 0, top1: 0, rrSum: 0, ttp: new Map() }])) as Record<Arm, ArmTotals>;
  for (const r of facts.decisions) {
    if (!isArm(r.arm)) continue;
    totals[r.arm].decisions += num(r.decisions);
    totals[r.arm].holdoutPpm += num(r.holdout_ppm_sum);
    totals[r.arm].holdoutKnown += num(r.holdout_known);
  }
  for (const r of facts.conversions) {
    if (!isArm(r.arm)) continue;
    const n = num(r.conversions);
    const rank = num(r.rank);
    totals[r.arm].conversions += n;
    if (rank === 1) totals[r.arm].top1 += n;
    if (rank > 0) totals[r.arm].rrSum += n / rank;
  }
  for (const r of facts.ttp) if (isArm(r.arm)) add(totals[r.arm].ttp, num(r.bin), num(r.n));
  return totals;
}

export function buildSummary(
  meta: { merchant_id: string; from: string; to: string; holdout_percent: number },
  facts: Record<FactName, FactRow[]>,
): SummaryResponse {
  const t = armTotals(facts);
  const arms = Object.fromEntries(
    ARMS.map((a) => [
      a,
      {
        decisions: t[a].decisions,
        conversions: t[a].conversions,
        conversion_rate: rate(t[a].conversions, t[a].decisions),
        top1_rate: rate(t[a].top1, t[a].conversions),
        mrr: rate(t[a].rrSum, t[a].conversions),
        median_time_to_pay_ms: histogramMedian(t[a].ttp),
      },
    ]),
  ) as SummaryResponse["arms"];

  let all = 0;
  let personalized = 0;
  let hits = 0;
  let lookups = 0;
  const fallbacks = Object.fromEntries(FallbackReason.options.map((r) => [r, 0])) as SummaryResponse["fallbacks"];
  for (const r of facts.decisions) {
    const n = num(r.decisions);
    all += n;
    personalized += num(r.personalized);
    hits += num(r.cache_hits);
    lookups += num(r.cache_hits) + num(r.cache_misses);
    const reason = r.fallback_reason as keyof typeof fallbacks | null;
    if (reason && reason in fallbacks) fallbacks[reason] += n;
  }

  return {
    ...meta,
    arms,
    lift: {
      conversion_rate: relativeLift(t.treatment.conversions, t.treatment.decisions, t.holdout.conversions, t.holdout.decisions),
      top1_rate: relativeLift(t.treatment.top1, t.treatment.conversions, t.holdout.top1, t.holdout.conversions),
    },
    srm: sampleRatioMismatch(t.treatment.decisions, t.holdout.decisions, holdoutPercentInForce(t, meta.holdout_percent)),
    aov: aovByCurrency(facts.conversions),
    methods: methodShares(facts.payments),
    offers: offerTotals(facts.offers),
    personalization_rate: rate(personalized, all),
    cache_hit_rate: rate(hits, lookups),
    fallbacks,
  };
}

/**
 * The holdout_percent the arms' decisions were assigned with, as their decision-weighted mean, so a
 * percent changed inside the window is no sample-ratio mismatch. Decisions recorded before the
 * percent was stored (migration 0011) count with the current one, as does a window without decisions.
 */
export function holdoutPercentInForce(t: Record<Arm, ArmTotals>, currentPercent: number): number {
  const n = t.treatment.decisions + t.holdout.decisions;
  if (n === 0) return currentPercent;
  const unknown = n - t.treatment.holdoutKnown - t.holdout.holdoutKnown;
  return (t.treatment.holdoutPpm + t.holdout.holdoutPpm + Math.round(currentPercent * 10_000) * unknown) / (n * 10_000);
}

function aovByCurrency(rows: FactRow[]): SummaryResponse["aov"] {
  const sums = new Map<string, Record<Arm, { n: number; sum: number }>>();
  for (const r of rows) {
    if (!isArm(r.arm) || !r.currency) continue;
    let c = sums.get(String(r.currency));
    if (!c) sums.set(String(r.currency), (c = { treatment: { n: 0, sum: 0 }, holdout: { n: 0, sum: 0 } }));
    c[r.arm].n += num(r.amount_n);
    c[r.arm].sum += num(r.amount_sum);
  }
  const mean = (x: { n: number; sum: number }) => (x.n > 0 ? Math.round(x.sum / x.n) : null);
  return [...sums.entries()]
    .filter(([, c]) => c.treatment.n + c.holdout.n > 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([currency, c]) => ({ currency, treatment: mean(c.treatment), holdout: mean(c.holdout) }));
}

function methodShares(rows: FactRow[]): SummaryResponse["methods"] {
  const byMethod = new Map<string, { all: number; treatment: number; holdout: number }>();
  const totals = { all: 0, treatment: 0, holdout: 0 };
  for (const r of rows) {
    const n = num(r.payments);
    const id = String(r.method_id);
    let m = byMethod.get(id);
    if (!m) byMethod.set(id, (m = { all: 0, treatment: 0, holdout: 0 }));
    m.all += n;
    totals.all += n;
    if (isArm(r.arm)) {
      m[r.arm] += n;
      totals[r.arm] += n;
    }
  }
  return [...byMethod.entries()]
    .sort(([a, x], [b, y]) => y.all - x.all || a.localeCompare(b))
    .map(([method_id, m]) => ({
      method_id,
      payments: m.all,
      share: rate(m.all, totals.all),
      treatment_share: rate(m.treatment, totals.treatment),
      holdout_share: rate(m.holdout, totals.holdout),
    }));
}

function offerTotals(rows: FactRow[]): SummaryResponse["offers"] {
  let shown = 0;
  let redeemed = 0;
  for (const r of rows) {
    shown += num(r.shown);
    redeemed += num(r.redeemed);
  }
  return { shown, redeemed, redemption_rate: rate(redeemed, shown) };
}
