/**
 * Replays a synthetic history in time order. Before each payment every ranker sees only what the
 * service would have stored by then (the same aggregates the usage_events trigger maintains);
 * after it, the payment is added to them.
 */
import { amountBand, bucketKey, segmentKey } from "../../src/personalization/buckets";
import { candidateMethods } from "../../src/personalization/candidates";
import type { ResolvedContext } from "../../src/personalization/context";
import { populationPrior, type PopularityRow } from "../../src/personalization/prior";
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
}

/** Aggregate rows kept both indexed (to update) and as an array (what storage hands to scoring). */
class Rows<T extends { method_id: string; weight_ref: number; uses: number }> {
  readonly list: T[] = [];
  private readonly index = new Map<string, T>();

  constructor(private readonly make: (key: string, method_id: string) => T) {}

  add(key: string, method_id: string, ref: number): void {
    let row = this.index.get(`${key}\t${method_id}`);
    if (!row) {
      row = this.make(key, method_id);
      this.index.set(`${key}\t${method_id}`, row);
      this.list.push(row);
    }
    row.weight_ref += ref;
    row.uses += 1;
  }
}

type StatRow = UsageStat & { uses: number };

const ORACLE_SAMPLES = 40;

export function replay(customers: readonly Customer[], events: readonly CheckoutEvent[], weights: Record<string, number> = {}): ReplayResult {
  const stats = new Map<number, Rows<StatRow>>();
  const popularity = new Rows<PopularityRow>((segment, method_id) => ({ segment, method_id, weight_ref: 0, uses: 0 }));
  const totals = new Map<number, number>();
  for (const e of events) totals.set(e.customer, (totals.get(e.customer) ?? 0) + 1);
  const merchant = { merchant_id: "m_eval", methods: MERCHANT_METHODS, holdout_percent: 0, scoring_weights: weights };
  const resolved = resolveWeights(weights);

  const empty = (): Record<Slice, Prediction[]> => ({ all: [], with_history: [], sparse: [] });
  const out: ReplayResult = { predictions: { model: empty(), literal: empty(), default: empty(), oracle: empty() } };

  for (const e of events) {
    const c = customers[e.customer]!;
    const own = stats.get(c.id) ?? new Rows<StatRow>((bucket, method_id) => ({ bucket, method_id, weight_ref: 0, uses: 0 }));
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
    const prior = populationPrior(candidates, popRows, ctx, resolved, e.t);
    const fallback = defaultOrder(candidates, prior);
    const uses = new Map(statRows.filter((s) => s.bucket === "*").map((s) => [s.method_id, s.uses]));
    const literalP = literalProbabilities(literalScores(candidates, uses, c.preferences.default_method, ctx));
    // Ties of the literal formula keep the merchant's default order, as a stable sort would.
    const literal = rankByProbability(candidates, literalP);

    const slices: Slice[] = ["all"];
    if (statRows.length > 0) slices.push("with_history");
    if ((totals.get(c.id) ?? 0) <= 3) slices.push("sparse");
    const record = (ranker: Ranker, order: string[], probs: Map<string, number>) => {
      const p = predictionFrom(order, probs, e.method_id);
      for (const s of slices) out.predictions[ranker][s].push(p);
    };
    record("model", model.methods.map((m) => m.method_id), new Map(model.methods.map((m) => [m.method_id, m.confidence])));
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

    // What the usage_events trigger would store.
    const ref = recencyRef(e.t);
    const band = amountBand(e.amount, e.currency);
    for (const b of [bucketKey.all, bucketKey.device(e.device_type), bucketKey.country(e.country), ...(band === null ? [] : [bucketKey.amount(band)])]) own.add(b, e.method_id, ref);
    stats.set(c.id, own);
    for (const s of [segmentKey.all, segmentKey.country(e.country), segmentKey.device(e.device_type), segmentKey.countryDevice(e.country, e.device_type)]) {
      popularity.add(s, e.method_id, ref);
    }
  }
  return out;
}
