import type { Tier } from "../schemas/common";
import type { BucketLimits } from "./bucket";

/** API.md §1: requests per hour and burst by tier. */
export const TIER_LIMITS: Record<Tier, BucketLimits> = {
  starter: { requests_per_hour: 1_000, burst: 100 },
  growth: { requests_per_hour: 5_000, burst: 500 },
  scale: { requests_per_hour: 10_000, burst: 1_000 },
};

/** The merchant's limits: an explicit `rate_limit` override wins over its tier. */
export function limitsFor(merchant: { tier: Tier; rate_limit: BucketLimits | null }): BucketLimits {
  const { requests_per_hour, burst } = merchant.rate_limit ?? TIER_LIMITS[merchant.tier];
  return { requests_per_hour, burst };
}
