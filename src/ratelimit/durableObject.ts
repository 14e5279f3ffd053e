import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { take, type BucketLimits, type BucketState, type TakeResult } from "./bucket";

/** The storage key of the one bucket a RateLimiter holds. */
export const BUCKET_KEY = "bucket";

export type RateLimitVerdict = Omit<TakeResult, "state">;

/**
 * One per merchant (`idFromName(merchant_id)`): the merchant's exact token bucket.
 *
 * `take` is synchronous from read to write (SQLite-backed storage's synchronous KV API), so no
 * other request can interleave and N concurrent calls against k tokens admit exactly k. The state
 * lives only in storage, so it survives eviction; the output gate holds each answer until its
 * write is durable, so a restart never hands out a token twice.
 */
export class RateLimiter extends DurableObject<Env> {
  /** Takes one token under the caller's current limits (the merchant's config may have changed). */
  take(limits: BucketLimits): RateLimitVerdict {
    const kv = this.ctx.storage.kv;
    const { state, ...verdict } = take(kv.get<BucketState>(BUCKET_KEY) ?? null, limits, Date.now());
    kv.put(BUCKET_KEY, state);
    return verdict;
  }
}
