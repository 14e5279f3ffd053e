/**
 * Recency weighting without rewriting rows: each event stores 2^((t - EPOCH) / HALF_LIFE), sums of
 * those are kept in D1, and a sum is turned into "events, each halved per half-life of age" at read
 * time by multiplying with 2^(-(now - EPOCH) / HALF_LIFE). Order of arrival does not matter.
 * Doubles hold 2^1000, i.e. ~80 years of 30-day half-lives past the epoch.
 */
export const RECENCY_EPOCH_MS = Date.UTC(2026, 0, 1);
export const RECENCY_HALF_LIFE_MS = 30 * 24 * 3600 * 1000;

export function recencyRef(occurredAtMs: number): number {
  return 2 ** ((occurredAtMs - RECENCY_EPOCH_MS) / RECENCY_HALF_LIFE_MS);
}

/** The recency-weighted count at `nowMs` of a stored `weight_ref` sum. */
export function decayedWeight(weightRef: number, nowMs: number): number {
  return weightRef * 2 ** (-(nowMs - RECENCY_EPOCH_MS) / RECENCY_HALF_LIFE_MS);
}
