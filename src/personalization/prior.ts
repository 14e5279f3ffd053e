import type { DeviceType } from "../schemas/common";
import { bucketKey, segmentKey } from "./buckets";
import { decayedWeight } from "./recency";
import type { ScoringWeights } from "./weights";

/** One row of method_popularity (the merchant's payments by segment; no customer ids). */
export interface PopularityRow {
  segment: string;
  method_id: string;
  weight_ref: number;
  uses: number;
}

export interface PriorContext {
  device_type: DeviceType | null;
  country: string | null;
  amount_band?: number | null;
}

/** Basket-size segments of method_popularity (migration 0006), next to the device ones of 0002. */
export const amountSegmentKey = {
  amount: (band: number) => `amount:${band}`,
  countryAmount: (c: string, band: number) => `country:${c}|amount:${band}`,
} as const;

/** The segments to refine through, coarse to fine: all → country (or device when no country) → country × device. */
export function segmentChain(ctx: PriorContext): string[] {
  const chain: string[] = [segmentKey.all];
  if (ctx.country) {
    chain.push(segmentKey.country(ctx.country));
    if (ctx.device_type) chain.push(segmentKey.countryDevice(ctx.country, ctx.device_type));
  } else if (ctx.device_type) {
    chain.push(segmentKey.device(ctx.device_type));
  }
  return chain;
}

/**
 * Cold-start probability of each candidate (aligned with `candidates`): a geometric prior over the
 * merchant's default order, refined segment by segment with Dirichlet smoothing, so a thin segment
 * leans on its parent and an empty merchant falls back to its own default order.
 */
export function populationPrior(candidates: readonly string[], popularity: readonly PopularityRow[], ctx: PriorContext, w: ScoringWeights, nowMs: number): number[] {
  if (candidates.length === 0) return [];
  let p = geometric(candidates.length, w.default_order_decay);
  const bySegment = indexBySegment(popularity);
  const decay = decayedWeight(1, nowMs);
  for (const segment of segmentChain(ctx)) p = refine(p, bySegment.get(segment), candidates, decay, w.popularity_strength);
  return p;
}

/** The population's view of one checkout context, as the ranking model consumes it. */
export interface ContextPrior {
  /** P(method | country): what a customer's overall habits are shrunk toward. */
  base: number[];
  /** P(method | country, device, amount band): the cold-start distribution (base × device lift × amount lift, normalized). */
  prior: number[];
  /**
   * P(method | country, bucket) for every device class and amount band (keys are method_stats
   * bucket keys: 'device:mobile', 'amount:2'). Scoring compares the context's segment with the
   * mix of segments behind the customer's evidence outside it, so it can move habits seen on one
   * device (or basket size) to another: wallets on mobile, BNPL on large baskets.
   */
  segments: SegmentPriors;
}

/** Population distributions by method_stats bucket key; a Map fits. */
export interface SegmentPriors {
  get(bucket: string): readonly number[] | undefined;
}

/** The method_popularity segment behind a device or amount-band bucket of method_stats (null for other buckets). */
function popularitySegment(bucket: string, country: string | null): string | null {
  const device = bucket.startsWith("device:") ? (bucket.slice(7) as DeviceType) : null;
  if (device) return country ? segmentKey.countryDevice(country, device) : segmentKey.device(device);
  const band = bucket.startsWith("amount:") ? Number(bucket.slice(7)) : NaN;
  if (Number.isInteger(band)) return country ? amountSegmentKey.countryAmount(country, band) : amountSegmentKey.amount(band);
  return null;
}

/**
 * The population prior for a context: country (or the whole merchant) as the base, each device
 * class and amount band refined from it (on demand), and the cold-start prior as base × device lift × amount
 * lift (naive Bayes: each lift is estimated on its own segment, which stays well populated where a
 * country × device × amount cell would not).
 */
export function contextPrior(candidates: readonly string[], popularity: readonly PopularityRow[], ctx: PriorContext, w: ScoringWeights, nowMs: number): ContextPrior {
  const n = candidates.length;
  const bySegment = indexBySegment(popularity);
  const decay = decayedWeight(1, nowMs);
  const strength = w.popularity_strength;
  let base = refine(geometric(n, w.default_order_decay), bySegment.get(segmentKey.all), candidates, decay, strength);
  if (ctx.country) base = refine(base, bySegment.get(segmentKey.country(ctx.country)), candidates, decay, strength);
  // Computed on first use: a ranking reads the context's buckets and the ones the customer's history touches.
  const cache = new Map<string, number[] | undefined>();
  const segments: SegmentPriors = {
    get(bucket) {
      if (cache.has(bucket)) return cache.get(bucket);
      const key = popularitySegment(bucket, ctx.country);
      const p = key === null ? undefined : refine(base, bySegment.get(key), candidates, decay, strength);
      cache.set(bucket, p);
      return p;
    },
  };
  const prior = base.slice();
  const device = ctx.device_type ? segments.get(bucketKey.device(ctx.device_type)) : undefined;
  const amount = ctx.amount_band !== null && ctx.amount_band !== undefined ? segments.get(bucketKey.amount(ctx.amount_band)) : undefined;
  for (let i = 0; i < n; i++) prior[i] = (device ? device[i]! : base[i]!) * (amount ? amount[i]! / base[i]! : 1);
  return { base, prior: normalize(prior), segments };
}

export function normalize(values: number[]): number[] {
  let total = 0;
  for (const v of values) total += v;
  if (total > 0) for (let i = 0; i < values.length; i++) values[i]! /= total;
  else values.fill(1 / values.length);
  return values;
}

function geometric(n: number, decay: number): number[] {
  const p = new Array<number>(n);
  for (let i = 0; i < n; i++) p[i] = decay ** i;
  return normalize(p);
}

/** `parent` updated with one segment's recency-weighted counts (Dirichlet: `strength` pseudo-events of the parent). */
function refine(parent: readonly number[], rows: readonly PopularityRow[] | undefined, candidates: readonly string[], decay: number, strength: number): number[] {
  if (!rows) return parent.slice();
  const counts = new Array<number>(parent.length).fill(0);
  let total = 0;
  for (const row of rows) {
    const i = candidates.indexOf(row.method_id);
    if (i < 0) continue;
    const c = row.weight_ref * decay;
    counts[i]! += c;
    total += c;
  }
  if (total <= 0) return parent.slice();
  for (let i = 0; i < counts.length; i++) counts[i] = (counts[i]! + strength * parent[i]!) / (total + strength);
  return counts;
}

/**
 * Rows grouped by segment, memoized per array: the popularity list is one cached object per
 * merchant (storage/popularity.ts keeps it in isolate memory), so the grouping is paid once per load
 * instead of once per ranking.
 */
const grouped = new WeakMap<readonly PopularityRow[], Map<string, PopularityRow[]>>();

function indexBySegment(popularity: readonly PopularityRow[]): Map<string, PopularityRow[]> {
  let index = grouped.get(popularity);
  if (!index) {
    index = new Map();
    for (const row of popularity) {
      const list = index.get(row.segment);
      if (list) list.push(row);
      else index.set(row.segment, [row]);
    }
    grouped.set(popularity, index);
  }
  return index;
}
