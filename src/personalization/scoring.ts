import type { DeviceType } from "../schemas/common";
import { bucketKey } from "./buckets";
import { normalize } from "./prior";
import { decayedWeight } from "./recency";
import type { ScoringWeights } from "./weights";

/** The aggregates scoring reads (method_stats rows and cross-merchant sums; see storage/profile.ts). */
export interface UsageStat {
  bucket: string;
  method_id: string;
  weight_ref: number;
}

export interface CrossUsage {
  method_id: string;
  weight_ref: number;
}

export interface ScoringContext {
  device_type: DeviceType | null;
  country: string | null;
  amount_band: number | null;
}

export interface StatedPreferences {
  default_method: string | null;
  favorite_methods: readonly string[];
}

export interface ScoringInput {
  /** Hard-filtered methods in the merchant's default order (candidates.ts). */
  candidates: readonly string[];
  /** Population prior aligned with `candidates` (prior.ts). */
  prior: readonly number[];
  /**
   * How much more likely each candidate is in this device class than in the same country overall
   * (population), aligned with `candidates`. A customer's habits in a device class they have not
   * used yet start from their overall habits shifted by this (e.g. wallets on mobile).
   */
  deviceLift?: readonly number[] | undefined;
  stats: readonly UsageStat[];
  cross: readonly CrossUsage[];
  preferences: StatedPreferences | null;
  context: ScoringContext;
  weights: ScoringWeights;
  nowMs: number;
}

export interface RankedMethod {
  method_id: string;
  /** Calibrated probability that the customer pays with this method now. */
  confidence: number;
  /** Log-scale utility: 100 = as likely as a uniform pick; +10 = e times as likely. Only order and differences mean something. */
  score: number;
}

/**
 * The ranking model: a hierarchy of Dirichlet-smoothed distributions over the candidates.
 *   population prior p0 → the customer's overall habits p1 (recency-weighted payments here, plus
 *   consented payments elsewhere at a lower weight) → per context dimension p_d (payments in this
 *   device / amount band / country, backed off to p1; for the device, to p1 shifted by the
 *   population's device lift, so a first visit on mobile already leans to wallets).
 * The dimensions combine as a product of experts, log p1 + Σ γ_d (log p_d − log p1); favourites and
 * the stored default add log-odds; a tempered softmax gives the confidences.
 */
export function scoreMethods(input: ScoringInput): RankedMethod[] {
  const { candidates, weights: w } = input;
  if (candidates.length === 0) return [];
  const index = new Map(candidates.map((id, i) => [id, i]));
  const byBucket = new Map<string, number[]>();
  const countsFor = (bucket: string) => {
    let counts = byBucket.get(bucket);
    if (!counts) {
      counts = new Array<number>(candidates.length).fill(0);
      byBucket.set(bucket, counts);
    }
    return counts;
  };
  for (const s of input.stats) {
    const i = index.get(s.method_id);
    if (i !== undefined) countsFor(s.bucket)[i]! += decayedWeight(s.weight_ref, input.nowMs);
  }
  const overall = countsFor(bucketKey.all).slice();
  for (const x of input.cross) {
    const i = index.get(x.method_id);
    if (i !== undefined) overall[i]! += w.cross_merchant_weight * decayedWeight(x.weight_ref, input.nowMs);
  }

  const p1 = smooth(overall, input.prior, w.prior_strength);
  const logit = p1.map((p) => Math.log(p));
  const dims: [string | null, number][] = [
    [input.context.device_type ? bucketKey.device(input.context.device_type) : null, w.device_weight],
    [input.context.amount_band !== null ? bucketKey.amount(input.context.amount_band) : null, w.amount_weight],
    [input.context.country ? bucketKey.country(input.context.country) : null, w.country_weight],
  ];
  for (const [bucket, gamma] of dims) {
    if (!bucket || gamma === 0) continue;
    const lift = bucket.startsWith("device:") ? input.deviceLift : undefined;
    const counts = byBucket.get(bucket);
    if (!counts && !lift) continue;
    const base = lift ? normalize(p1.map((p, i) => p * lift[i]!)) : p1;
    const pd = smooth(counts ?? new Array<number>(candidates.length).fill(0), base, w.context_strength);
    for (let i = 0; i < logit.length; i++) logit[i]! += gamma * (Math.log(pd[i]!) - Math.log(p1[i]!));
  }

  const favorites = new Set(input.preferences?.favorite_methods ?? []);
  const stored = input.preferences?.default_method ?? null;
  candidates.forEach((id, i) => {
    if (favorites.has(id)) logit[i]! += w.favorite_boost;
    if (id === stored) logit[i]! += w.default_boost;
  });

  const probs = softmax(logit.map((z) => z / w.temperature));
  return rankByProbability(candidates, probs);
}

/** A fallback answer: the merchant's default order (already context-filtered), confidences from the prior. */
export function defaultOrder(candidates: readonly string[], prior: readonly number[]): RankedMethod[] {
  const probs = normalize([...prior]);
  return candidates.map((id, i) => toRanked(id, probs[i]!, candidates.length));
}

export function rankByProbability(candidates: readonly string[], probs: readonly number[]): RankedMethod[] {
  return candidates
    .map((id, i) => ({ id, p: probs[i]!, i }))
    .sort((a, b) => b.p - a.p || a.i - b.i) // ties keep the merchant's default order
    .map(({ id, p }) => toRanked(id, p, candidates.length));
}

/** Dirichlet smoothing: counts plus `strength` pseudo-events spread as `base`. */
export function smooth(counts: readonly number[], base: readonly number[], strength: number): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  return counts.map((c, i) => (c + strength * base[i]!) / (total + strength));
}

export function softmax(z: readonly number[]): number[] {
  const max = Math.max(...z);
  return normalize(z.map((v) => Math.exp(v - max)));
}

/** Rounded down to 4 decimals so that a response's confidences never sum above 1. */
function toRanked(method_id: string, p: number, n: number): RankedMethod {
  const confidence = Math.floor(p * 10_000) / 10_000;
  const score = Math.round((100 + 10 * Math.log(Math.max(p, 1e-12) * n)) * 100) / 100;
  return { method_id, confidence, score };
}
