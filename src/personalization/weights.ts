/**
 * Every tunable of the ranking model, in one place. Defaults were calibrated on the synthetic
 * replay (`npm run eval`, docs/personalization.md); a merchant may override any key through
 * `scoring_weights` (admin API, which refuses unknown keys and values out of range). Reading, unknown
 * keys are ignored and values clamped, so an old config never breaks scoring.
 */
export interface ScoringWeights {
  /** Dirichlet strength of the population prior in a customer's overall habits (pseudo-events). */
  prior_strength: number;
  /**
   * Strength of the back-off from a context bucket to overall habits: the country bucket's pseudo-events of p1; for
   * device and amount band, the population lift's weight f = context_strength / the customer's evidence outside the bucket.
   */
  context_strength: number;
  /** How much each context dimension may move the log-probability (0 = ignore, 1 = full Bayes). */
  device_weight: number;
  amount_weight: number;
  country_weight: number;
  /** Pseudo-events of the parent segment in each popularity segment (country × device → country → all). */
  popularity_strength: number;
  /** Base prior over the merchant's default order: position i gets default_order_decay^i. */
  default_order_decay: number;
  /** Log-odds added to a favourite and to the stored default method. */
  favorite_boost: number;
  default_boost: number;
  /** Weight of one (recency-weighted) payment at another consenting merchant, relative to one here. */
  cross_merchant_weight: number;
  /** Weight of a payment's plain count next to its recency-weighted one (evidence that does not fade with age). */
  long_memory: number;
  /** Log-odds added to the method paid with most recently in this device class (a habit change shows there first). */
  last_used_boost: number;
  /** Softmax temperature applied to the log-scores (calibration). */
  temperature: number;
}

export const DEFAULT_WEIGHTS: Readonly<ScoringWeights> = Object.freeze({
  prior_strength: 0.5,
  context_strength: 5,
  device_weight: 1.25,
  amount_weight: 1,
  country_weight: 0.5,
  popularity_strength: 20,
  default_order_decay: 0.75,
  favorite_boost: 0.5,
  default_boost: 1,
  cross_merchant_weight: 0.3,
  long_memory: 0.2,
  last_used_boost: 0.25,
  temperature: 1.4,
});

/** The range of each key a merchant may set (admin API: outside it is a 400; a stored value is clamped to it). */
export const WEIGHT_BOUNDS: Readonly<Record<keyof ScoringWeights, readonly [number, number]>> = {
  prior_strength: [0.01, 1000],
  context_strength: [0.01, 1000],
  device_weight: [0, 3],
  amount_weight: [0, 3],
  country_weight: [0, 3],
  popularity_strength: [0.01, 10_000],
  default_order_decay: [0.01, 1],
  favorite_boost: [-10, 10],
  default_boost: [-10, 10],
  cross_merchant_weight: [0, 1],
  long_memory: [0, 1],
  last_used_boost: [-5, 5],
  temperature: [0.05, 20],
};

export const WEIGHT_KEYS = Object.keys(WEIGHT_BOUNDS) as (keyof ScoringWeights)[];

/** Defaults overlaid with a merchant's overrides, each clamped to a range where the model stays sane. */
export function resolveWeights(overrides: Readonly<Record<string, number>> | undefined): ScoringWeights {
  const out: ScoringWeights = { ...DEFAULT_WEIGHTS };
  if (!overrides) return out;
  for (const key of WEIGHT_KEYS) {
    const value = overrides[key];
    if (typeof value !== "number" || !Number.isFinite(value)) continue;
    const [lo, hi] = WEIGHT_BOUNDS[key];
    out[key] = Math.min(hi, Math.max(lo, value));
  }
  return out;
}
