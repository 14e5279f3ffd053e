/**
 * Replays a synthetic history in time order. Before each payment every ranker sees only what the
 * service would have stored by then (the same aggregates the usage_events trigger maintains);
 * after it, the payment is added to them.
 */
import { amountBand, bucketKey, segmentKey } from "../../src/personalization/buckets";
import { candidateMethods } from "../../src/personalization/candidates";
import type { ResolvedContext } from "../../src/personalization/context";
import { amountSegmentKey, contextPrior, type PopularityRow } from "../../src/personalization/prior";
import { rankForCustomer, type RankingProfile } from "../../src/personalization/ranking";
import { defaultOrder, rankByProbability, type UsageStat } from "../../src/personalization/scoring";
import { recencyRef } from "../../src/personalization/recency";
import { resolveWeights } from "../../src/personalization/weights";
import { type CheckoutEvent, choose, type Customer, MERCHANT_METHODS } from "./generate";
import { literalProbabilities, literalScores } from "./literal";
import { type Prediction, predictionFrom } from "./metrics";
import { Rng } from "./random";

export type Ranker = "model" | "literal" | "default" | "oracle";
export type Slice = "all" | "with_history" | "sparse";

export interface ReplayResult {
  predictions: Record<Ranker, Record<Slice, Prediction[]>>;
  /** Diagnostic segments (history length, context switches, habit change), by ranker. */
  segments: Record<Ranker, Map<string, Prediction[]>>;
}

/** Aggregate rows kept both indexed (to update) and as an array (what storage hands to scoring). */
class Rows<T extends { method_id: string; weight_ref: number; uses: number; last_used_at?: string }> {
  /** A new array whenever a row is added (storage hands scoring a fresh list per read; prior.ts memoizes per list). */
  list: T[] = [];
  private readonly index = new Map<string, T>();

  constructor(private readonly make: (key: string, method_id: string) => T) {}

  add(key: string, method_id: string, ref: number, at?: string): void {
    let row = this.index.get(`${key}\t${method_id}`);
    if (!row) {
      row = this.make(key, method_id);
      this.index.set(`${key}\t${method_id}`, row);
      this.list = [...this.list, row];
    }
    row.weight_ref += ref;
    row.uses += 1;
    if (at !== undefined && (row.last_used_at === undefined || at > row.last_used_at)) row.last_used_at = at;
  }
}

type StatRow = UsageStat & { uses: number; last_used_at: string };

const ORACLE_SAMPLES = 40;

export function replay(customers: readonly Customer[], events: readonly CheckoutEvent[], weights: Record<string, number> = {}, opts: { modelOnly?: boolean } = {}): ReplayResult {
  const stats = new Map<number, Rows<StatRow>>();
  const popularity = new Rows<PopularityRow>((segment, method_id) => ({ segment, method_id, weight_ref: 0, uses: 0 }));
  const totals = new Map<number, number>();
  for (const e of events) totals.set(e.customer, (totals.get(e.customer) ?? 0) + 1);
  const merchant = { merchant_id: "m_eval", methods: MERCHANT_METHODS, holdout_percent: 0, scoring_weights: weights };
  const resolved = resolveWeights(weights);

  const empty = (): Record<Slice, Prediction[]> => ({ all: [], with_history: [], sparse: [] });
  const out: ReplayResult = {
    predictions: { model: empty(), literal: empty(), default: empty(), oracle: empty() },
    segments: { model: new Map(), literal: new Map(), default: new Map(), oracle: new Map() },
  };
  const seen = new Map<number, number>();

  for (const e of events) {
    const c = customers[e.customer]!;
    const own = stats.get(c.id) ?? new Rows<StatRow>((bucket, method_id) => ({ bucket, method_id, weight_ref: 0, uses: 0, last_used_at: "" }));
    const ctx: ResolvedContext = {
      device_type: e.device_type, country: e.country, amount: e.amount, currency: e.currency,
      amount_band: amountBand(e.amount, e.currency), timezone: "UTC", time_of_day: "afternoon", day_of_week: 1,
    };
    const statRows = own.list;
    const popRows = popularity.list;
    const profile: RankingProfile = {
      preferences: { ...c.preferences, personalization_enabled: true },
      stats: statRows,
      cross_merchant: [],
      pending_deletion: false,
    };

    const model = rankForCustomer({ merchant, customerRef: `c${c.id}`, profile, popularity: popRows, context: ctx, nowMs: e.t });
    const candidates = candidateMethods(MERCHANT_METHODS, ctx, c.preferences.excluded_methods);
    const fallback = defaultOrder(candidates, contextPrior(candidates, popRows, ctx, resolved, e.t).prior);
    const uses = new Map(statRows.filter((s) => s.bucket === "*").map((s) => [s.method_id, s.uses]));
    const literalP = literalProbabilities(literalScores(candidates, uses, c.preferences.default_method, ctx));
    // Ties of the literal formula keep the merchant's default order, as a stable sort would.
    const literal = rankByProbability(candidates, literalP);

    const slices: Slice[] = ["all"];
    if (statRows.length > 0) slices.push("with_history");
    if ((totals.get(c.id) ?? 0) <= 3) slices.push("sparse");
    const segments = segmentsOf(c, e, own, seen.get(c.id) ?? 0);
    const record = (ranker: Ranker, order: string[], probs: Map<string, number>) => {
      const p = predictionFrom(order, probs, e.method_id);
      for (const s of slices) out.predictions[ranker][s].push(p);
      for (const s of segments) {
        const list = out.segments[ranker].get(s) ?? [];
        list.push(p);
        out.segments[ranker].set(s, list);
      }
    };
    /** What the usage_events trigger (migration 0006) stores once the payment is in. */
    const learn = (): void => {
      const ref = recencyRef(e.t);
      const band = amountBand(e.amount, e.currency);
      const at = new Date(e.t).toISOString();
      for (const b of [bucketKey.all, bucketKey.device(e.device_type), bucketKey.country(e.country), ...(band === null ? [] : [bucketKey.amount(band)])]) own.add(b, e.method_id, ref, at);
      stats.set(c.id, own);
      seen.set(c.id, (seen.get(c.id) ?? 0) + 1);
      const amountSegments = band === null ? [] : [amountSegmentKey.amount(band), amountSegmentKey.countryAmount(e.country, band)];
      for (const s of [segmentKey.all, segmentKey.country(e.country), segmentKey.device(e.device_type), segmentKey.countryDevice(e.country, e.device_type), ...amountSegments]) {
        popularity.add(s, e.method_id, ref);
      }
    };
    record("model", model.methods.map((m) => m.method_id), new Map(model.methods.map((m) => [m.method_id, m.confidence])));
    if (opts.modelOnly) {
      learn();
      continue;
    }
    record("default", fallback.map((m) => m.method_id), new Map(fallback.map((m) => [m.method_id, m.confidence])));
    record("literal", literal.map((m) => m.method_id), new Map(candidates.map((id, i) => [id, literalP[i]!])));

    // The ceiling: the generator's own choice distribution for this customer and context (sampled).
    const sampler = new Rng(e.t ^ (c.id * 7919));
    const freq = new Map(candidates.map((id) => [id, 0.05]));
    for (let k = 0; k < ORACLE_SAMPLES; k++) {
      const pick = choose(sampler, c, e);
      freq.set(pick, (freq.get(pick) ?? 0) + 1);
    }
    const total = [...freq.values()].reduce((a, b) => a + b, 0);
    const oracle = rankByProbability(candidates, candidates.map((id) => freq.get(id)! / total));
    record("oracle", oracle.map((m) => m.method_id), new Map(oracle.map((m) => [m.method_id, m.confidence])));

    learn();
  }
  return out;
}

/** Which diagnostic segments a payment falls in (judged from what was stored before it, plus the generator's truth for habit changes). */
function segmentsOf(c: Customer, e: CheckoutEvent, own: Rows<StatRow>, before: number): string[] {
  const out = [`history ${before === 0 ? "0" : before <= 3 ? "1–3" : before <= 10 ? "4–10" : ">10"}`];
  if (before === 0) return out;
  const has = (bucket: string) => own.list.some((s) => s.bucket === bucket);
  const band = amountBand(e.amount, e.currency);
  if (!has(bucketKey.device(e.device_type))) out.push("switch: device class never used before");
  if (band !== null && !has(bucketKey.amount(band))) out.push("switch: amount band never used before");
  if (!has(bucketKey.country(e.country))) out.push("switch: country never used before");
  if (e.amount >= 10_000) out.push("basket ≥ 100 (BNPL-relevant)");
  if (c.changed && e.t >= c.changeAt) {
    const priorUse = own.list.some((s) => s.bucket === bucketKey.all); // had payments before (some possibly pre-change)
    if (priorUse) out.push("after a habit change");
  }
  return out;
}
