import type { DeviceType } from "../schemas/common";
import { bucketKey } from "./buckets";
import { normalize, type SegmentPriors } from "./prior";
import { decayedWeight } from "./recency";
import type { ScoringWeights } from "./weights";

/** The aggregates scoring reads (method_stats rows and cross-merchant sums; see storage/profile.ts). */
export interface UsageStat {
  bucket: string;
  method_id: string;
  /** Sum of recencyRef over the bucket's payments (30-day half-life, recency.ts). */
  weight_ref: number;
  /** Plain count of those payments; absent = recency-weighted only. */
  uses?: number;
  /** ISO time of the latest of them (text-comparable); absent = unknown. */
  last_used_at?: string;
}

export interface CrossUsage {
  method_id: string;
  weight_ref: number;
  uses?: number;
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
  /** Population prior aligned with `candidates` that a customer's overall habits are shrunk toward (prior.ts `contextPrior().base`). */
  prior: readonly number[];
  /**
   * P(method | country, bucket) of the population for device and amount-band buckets, keyed by
   * bucket key, aligned with `candidates` (prior.ts `contextPrior().segments`). A customer's habits
   * in a device class or basket size they have not used (much) start from their overall habits,
   * shifted by how the population's choices in this bucket differ from those behind the customer's
   * evidence outside it (wallets on mobile, card or PayPal on desktop, BNPL on large baskets).
   */
  segments?: SegmentPriors | undefined;
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
 *   population prior p0 (country) → the customer's overall habits p1 = a / Σa, a = evidence here, plus
 *   consented payments elsewhere at a lower weight, plus prior_strength × p0 → per context dimension a
 *   factor: for device and amount band R_m = (m's evidence in this bucket) / a_m + f · ℓ_m, the
 *   population's lift ℓ for this bucket over the customer's evidence outside it at f = κ / that
 *   evidence, so a first visit on mobile already leans to wallets and a first large basket to BNPL;
 *   for country p_c / p1, the bucket smoothed toward p1.
 * Evidence per method = recency-weighted count (30-day half-life) + long_memory × plain count: recency
 * decides between methods, but old payments still count as evidence that the customer has habits.
 * The dimensions combine as a product of experts, ln p1 + Σ γ_d ln R_d; the method paid with last in
 * this device class, favourites and the stored default add log-odds; a tempered softmax gives the
 * confidences. One more payment with X in this context never lowers X (docs/personalization.md).
 */
export function scoreMethods(input: ScoringInput): RankedMethod[] {
  const { candidates, weights: w, context } = input;
  const n = candidates.length;
  if (n === 0) return [];
  const decay = decayedWeight(1, input.nowMs);
  const deviceKey = context.device_type ? bucketKey.device(context.device_type) : null;
  const amountKey = context.amount_band !== null ? bucketKey.amount(context.amount_band) : null;
  const countryKey = context.country ? bucketKey.country(context.country) : null;
  const overall = new Float64Array(n);
  const device = new Float64Array(n);
  const amount = new Float64Array(n);
  const country = new Float64Array(n);
  const segments = input.segments;
  const target = {
    device: deviceKey ? segments?.get(deviceKey) : undefined,
    amount: amountKey ? segments?.get(amountKey) : undefined,
  };
  // The population's choices over the buckets this customer's history comes from outside the context's own bucket
  // (other device classes, other amount bands), weighted like it, and how much evidence that is.
  const deviceMix = new Float64Array(n);
  const amountMix = new Float64Array(n);
  let deviceOut = 0, amountOut = 0;
  let hasDevice = false, hasAmount = false, hasCountry = false;
  let lastAt = "", last = -1;
  for (const s of input.stats) {
    const i = candidates.indexOf(s.method_id);
    if (i < 0) continue;
    const c = s.weight_ref * decay + w.long_memory * (s.uses ?? 0);
    const b = s.bucket;
    if (b !== bucketKey.all && b !== countryKey && b !== deviceKey && b !== amountKey && segments) {
      const pop = segments.get(b);
      if (pop) {
        const isDevice = b.charCodeAt(0) === 100; /* d */
        const mix = isDevice ? deviceMix : amountMix;
        for (let k = 0; k < n; k++) mix[k]! += c * pop[k]!;
        if (isDevice) deviceOut += c;
        else amountOut += c;
      }
    }
    if (b === bucketKey.all) overall[i]! += c;
    else if (b === deviceKey) {
      device[i]! += c;
      hasDevice = true;
      if (s.last_used_at !== undefined && s.last_used_at > lastAt) {
        lastAt = s.last_used_at;
        last = i;
      }
    } else if (b === amountKey) {
      amount[i]! += c;
      hasAmount = true;
    } else if (b === countryKey) {
      country[i]! += c;
      hasCountry = true;
    }
  }
  for (const x of input.cross) {
    const i = candidates.indexOf(x.method_id);
    if (i >= 0) overall[i]! += w.cross_merchant_weight * (x.weight_ref * decay + w.long_memory * (x.uses ?? 0));
  }

  // a_m: the customer's overall evidence for m plus its prior pseudo-events; p1 = a / Σa.
  const evidence = new Float64Array(n);
  let evidenceTotal = 0;
  for (let i = 0; i < n; i++) evidenceTotal += evidence[i] = overall[i]! + w.prior_strength * input.prior[i]!;
  const p1 = smoothInto(new Float64Array(n), overall, input.prior, w.prior_strength);
  const logit = new Float64Array(n);
  // ln a_m, which is ln p1_m up to a constant (and does not underflow where p1_m = a_m / Σa would).
  for (let i = 0; i < n; i++) logit[i] = logOf(evidence[i]!);
  const scratch = new Float64Array(n);
  /** A bucket's count of m, at most m's overall evidence (so with consistent rows, unchanged). */
  const bounded = (counts: Float64Array) => {
    for (let i = 0; i < n; i++) scratch[i] = Math.min(counts[i]!, evidence[i]!);
    return scratch;
  };
  const lift = new Float64Array(n);
  /**
   * A device or amount-band dimension, as a contextual factor per method (the same as γ (ln p_d − ln p1)
   * of a bucket distribution p_d = (c + κ·b) / (T + κ), up to a term common to all methods):
   *   R_m = c_m / a_m + f · ℓ_m,   logit_m += γ ln R_m
   * c_m / a_m is the share of m's evidence paid in this bucket; ℓ_m = P_pop(m | this bucket) / P_pop(m | the
   * customer's evidence outside it) is the population's lift; f = κ / that evidence. ℓ and f read only what lies
   * outside the context's own bucket (the customer's other device classes or bands, evidence without one,
   * cross-merchant sums and the prior pseudo-events, which count as the country's overall choices), so one
   * more payment here with X raises c_X / a_X and leaves ℓ, f and every other method's factor as they were:
   * X's odds against every other method can only go up, whatever the weights (docs/personalization.md).
   */
  const dimension = (counts: Float64Array, has: boolean, pop: readonly number[] | undefined, mix: Float64Array, out: number, gamma: number) => {
    if (gamma === 0 || (!has && !pop)) return;
    let inBucket = 0;
    for (let i = 0; i < n; i++) inBucket += counts[i]!;
    const outside = Math.max(0, evidenceTotal - inBucket);
    const rest = Math.max(0, outside - out); // evidence with no bucket of this dimension
    for (let i = 0; i < n; i++) {
      const l = pop ? pop[i]! / ((mix[i]! + rest * input.prior[i]!) / (out + rest)) : 1;
      // A divisor that underflowed to 0 (popularity counts ~1e300 times the method's, as a clock decades off gives) has no lift.
      lift[i] = Number.isFinite(l) ? l : 1;
    }
    // outside ≥ prior_strength with consistent rows (every bucket's payments are in '*'); the floor keeps others finite.
    const f = w.context_strength / Math.max(outside, w.prior_strength);
    const c = bounded(counts);
    for (let i = 0; i < n; i++) {
      const a = evidence[i]!;
      logit[i]! += gamma * logOf((a > 0 ? c[i]! / a : 0) + f * lift[i]!);
    }
  };
  if (deviceKey) dimension(device, hasDevice, target.device, deviceMix, deviceOut, w.device_weight);
  if (amountKey) dimension(amount, hasAmount, target.amount, amountMix, amountOut, w.amount_weight);
  if (countryKey && w.country_weight !== 0 && hasCountry) {
    // Country: the bucket smoothed toward overall habits (no population lift), γ (ln p_c − ln p1).
    const pc = smoothInto(new Float64Array(n), bounded(country), p1, w.context_strength);
    for (let i = 0; i < n; i++) logit[i]! += w.country_weight * (logOf(pc[i]!) - logOf(p1[i]!));
  }

  if (last >= 0) logit[last]! += w.last_used_boost;
  const prefs = input.preferences;
  if (prefs) {
    for (const id of prefs.favorite_methods) {
      const i = candidates.indexOf(id);
      if (i >= 0) logit[i]! += w.favorite_boost;
    }
    const i = prefs.default_method === null ? -1 : candidates.indexOf(prefs.default_method);
    if (i >= 0) logit[i]! += w.default_boost;
  }

  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logit[i]! / w.temperature);
  let z = 0;
  for (let i = 0; i < n; i++) z += logit[i] = Math.exp(logit[i]! / w.temperature - max);
  for (let i = 0; i < n; i++) logit[i]! /= z;
  return rankByProbability(candidates, logit);
}

/**
 * ln p, with a probability that underflowed to 0 read as the smallest double (ln ≈ −744.4), so that a
 * difference of two such logs is 0, not NaN (−∞ − −∞). Only reachable with counts ~1e300 times each
 * other, e.g. a clock decades before the data; a probability above 5e-324 is unchanged.
 */
function logOf(p: number): number {
  return Math.log(Math.max(p, Number.MIN_VALUE));
}

/** Dirichlet smoothing into `out`: counts plus `strength` pseudo-events spread as `base`. */
function smoothInto(out: Float64Array, counts: Float64Array, base: ArrayLike<number>, strength: number): Float64Array {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i]!;
  for (let i = 0; i < counts.length; i++) out[i] = (counts[i]! + strength * base[i]!) / (total + strength);
  return out;
}

/** A fallback answer: the merchant's default order (already context-filtered), confidences from the prior. */
export function defaultOrder(candidates: readonly string[], prior: readonly number[]): RankedMethod[] {
  const probs = normalize([...prior]);
  return totalBelowOne(candidates.map((id, i) => toRanked(id, probs[i]!, candidates.length)));
}

export function rankByProbability(candidates: readonly string[], probs: ArrayLike<number>): RankedMethod[] {
  const n = candidates.length;
  const order = new Array<number>(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => probs[b]! - probs[a]! || a - b); // ties keep the merchant's default order
  const out = new Array<RankedMethod>(n);
  for (let k = 0; k < n; k++) out[k] = toRanked(candidates[order[k]!]!, probs[order[k]!]!, n);
  return totalBelowOne(out);
}

/**
 * Each confidence is floored to 4 decimals, so the ten-thousandths add up to at most 10 000; at
 * exactly 10 000 the floating-point sum of the values can still come out above 1 (20 methods at
 * 0.05 sum to 1.0000000000000002, added in either direction), and then one ten-thousandth comes off
 * the smallest value (the last of equal ones, which keeps a sorted answer sorted).
 */
function totalBelowOne(ranked: RankedMethod[]): RankedMethod[] {
  let forward = 0;
  let backward = 0;
  let smallest = -1;
  for (let i = 0; i < ranked.length; i++) {
    forward += ranked[i]!.confidence;
    backward += ranked[ranked.length - 1 - i]!.confidence;
    const c = ranked[i]!.confidence;
    if (c > 0 && (smallest < 0 || c <= ranked[smallest]!.confidence)) smallest = i;
  }
  if ((forward > 1 || backward > 1) && smallest >= 0) {
    const m = ranked[smallest]!;
    ranked[smallest] = { ...m, confidence: (Math.round(m.confidence * 10_000) - 1) / 10_000 };
  }
  return ranked;
}

/** Rounded down to 4 decimals so that a response's confidences never sum above 1 (with totalBelowOne). */
function toRanked(method_id: string, p: number, n: number): RankedMethod {
  const confidence = Math.floor(p * 10_000) / 10_000;
  const score = Math.round((100 + 10 * Math.log(Math.max(p, 1e-12) * n)) * 100) / 100;
  return { method_id, confidence, score };
}
