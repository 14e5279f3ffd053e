import type { DeviceType } from "../schemas/common";
import { segmentKey } from "./buckets";
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
}

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
  let p = candidates.map((_, i) => w.default_order_decay ** i);
  p = normalize(p);
  const index = new Map(candidates.map((id, i) => [id, i]));
  for (const segment of segmentChain(ctx)) {
    const counts = new Array<number>(candidates.length).fill(0);
    for (const row of popularity) {
      if (row.segment !== segment) continue;
      const i = index.get(row.method_id);
      if (i !== undefined) counts[i]! += decayedWeight(row.weight_ref, nowMs);
    }
    const total = counts.reduce((a, b) => a + b, 0);
    if (total <= 0) continue;
    p = p.map((prev, i) => (counts[i]! + w.popularity_strength * prev) / (total + w.popularity_strength));
  }
  return p;
}

export function normalize(values: number[]): number[] {
  const total = values.reduce((a, b) => a + b, 0);
  return total > 0 ? values.map((v) => v / total) : values.map(() => 1 / values.length);
}
