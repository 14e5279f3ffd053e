import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { describe, fullBucket, refill, take, type BucketLimits, type BucketState, type TakeResult } from "./bucket";

/** The storage key of the one bucket a RateLimiter holds. */
export const BUCKET_KEY = "bucket";

/**
 * How long a config older than the bucket's is ignored after the newer one was first seen. Merchant
 * config reaches every isolate within 60 s (src/storage/merchants.ts), so until then an isolate may
 * still send the old limits; past it, every caller sends what D1 holds, and that is adopted even if
 * it is older (a restored row, clocks that disagreed between two quick PATCHes).
 */
export const STALE_CONFIG_MS = 60_000;

/** The merchant's limits as the caller's copy of its config has them. */
export interface LimiterConfig extends BucketLimits {
  /** When that config was written (the merchant's `updated_at`, ms): orders configs seen from isolates with caches of different ages. */
  version: number;
  /**
   * Which merchant of that id the config belongs to: its `created_at`, fixed for the row's life, so a
   * merchant deleted and created again with the same id (the object's name) is told apart from the
   * one before it and starts with a full bucket. Absent from a caller that does not send it (a
   * worker of a version before it was sent, during a deploy): that call runs on the stored bucket.
   */
  incarnation?: string;
}

/** What is stored under BUCKET_KEY: the bucket and the config it runs under. */
export interface StoredBucket extends BucketState {
  /** The version of the config the bucket runs under; absent in buckets stored before it was recorded. */
  config_version?: number;
  /** When (this object's clock, ms) that config was first seen. */
  config_seen_ms?: number;
  /** The incarnation (merchant `created_at`) the bucket belongs to; absent in buckets stored before it was recorded. */
  incarnation?: string;
  /** When (this object's clock, ms) that incarnation was first seen. */
  incarnation_seen_ms?: number;
}

export type RateLimitVerdict = Omit<TakeResult, "state"> & {
  /** The limits the verdict was computed under (the caller's, unless its config was older than the bucket's). */
  limits: BucketLimits;
};

/**
 * One per merchant (`idFromName(merchant_id)`): the merchant's exact token bucket, which belongs to
 * one incarnation of that id (`ofIncarnation`).
 *
 * `take` is synchronous from read to write (SQLite-backed storage's synchronous KV API), so no
 * other request can interleave and N concurrent calls against k tokens admit exactly k. The state
 * lives only in storage, so it survives eviction; the output gate holds each answer until its
 * write is durable, so a restart never hands out a token twice.
 */
export class RateLimiter extends DurableObject<Env> {
  /**
   * Takes one token under the caller's current limits. The config reaches the object only this way,
   * with every request, from the calling isolate's cached copy of the merchant: the object is where
   * a change is first seen, so the bucket is settled there at the limits it ran under before it
   * continues at the new ones (bucket.ts `refill`). A config older than the bucket's, from an isolate
   * whose copy is not yet refreshed, is not allowed to switch it back for STALE_CONFIG_MS.
   */
  take(config: LimiterConfig): RateLimitVerdict {
    const kv = this.ctx.storage.kv;
    const now = Date.now();
    const { stored, incarnation } = ofIncarnation(kv.get<StoredBucket>(BUCKET_KEY) ?? null, config, now);
    const { applied, limits, current } = settle(stored, config, now);
    const unchanged = current !== null && applied.version === current.version && limits.requests_per_hour === current.requests_per_hour && limits.burst === current.burst;
    const { state, ...verdict } = take(stored, limits, now);
    const next: StoredBucket = { ...state, config_version: applied.version, config_seen_ms: unchanged ? current.seen_ms : now, ...incarnation };
    kv.put(BUCKET_KEY, next);
    return { ...verdict, limits };
  }

  /**
   * The bucket as `take` would see it, without taking a token or writing anything: the RateLimit-*
   * headers of a request refused before it reached the bucket (a visitor over its own limit), so
   * that such a request never spends the merchant's tokens. `allowed` says whether a token is there.
   */
  peek(config: LimiterConfig): RateLimitVerdict {
    const now = Date.now();
    const { stored } = ofIncarnation(this.ctx.storage.kv.get<StoredBucket>(BUCKET_KEY) ?? null, config, now);
    const { limits } = settle(stored, config, now);
    const headers = describe(refill(stored ?? fullBucket(limits, now), limits, now), limits);
    return { allowed: headers.retry_after_seconds === 0, ...headers, limits };
  }
}

/**
 * The stored bucket a call runs on, and the incarnation to store with the result. The object is named
 * by merchant id, so a merchant deleted (SQL) and created again with that id reaches the same object:
 * a caller naming another incarnation (`created_at`) than the bucket's gets a fresh, full bucket
 * (`stored` null), and the bucket is the new incarnation's from then on. Except within
 * STALE_CONFIG_MS of the bucket's incarnation being first seen: merchant copies reach every isolate
 * within 60 s, so until then another incarnation is an isolate still holding the merchant before it
 * was re-created, and its requests count against the current bucket instead of switching it back
 * to a full one. A bucket stored before incarnations were recorded is adopted by the first caller
 * that names one, tokens kept; a caller naming none runs on the stored bucket and changes nothing.
 */
function ofIncarnation(stored: StoredBucket | null, config: LimiterConfig, now: number): { stored: StoredBucket | null; incarnation: Pick<StoredBucket, "incarnation" | "incarnation_seen_ms"> } {
  const caller = config.incarnation;
  const kept = stored?.incarnation === undefined ? {} : { incarnation: stored.incarnation, incarnation_seen_ms: stored.incarnation_seen_ms ?? 0 };
  if (caller === undefined || stored?.incarnation === caller) return { stored, incarnation: kept };
  const fresh = { incarnation: caller, incarnation_seen_ms: now };
  if (stored === null || stored.incarnation === undefined) return { stored, incarnation: fresh };
  if (now - (stored.incarnation_seen_ms ?? 0) < STALE_CONFIG_MS) return { stored, incarnation: kept };
  return { stored: null, incarnation: fresh };
}

/**
 * The config a call runs under: the caller's, unless it is older than the bucket's and that one was
 * first seen less than STALE_CONFIG_MS ago (an isolate whose cached merchant is not yet refreshed).
 */
function settle(stored: StoredBucket | null, config: LimiterConfig, now: number) {
  const current = stored ? currentConfig(stored) : null;
  const stale = current !== null && config.version < current.version && now - current.seen_ms < STALE_CONFIG_MS;
  const applied: LimiterConfig = stale ? current : config;
  const limits: BucketLimits = { requests_per_hour: applied.requests_per_hour, burst: applied.burst };
  return { applied, limits, current };
}

/** The config a stored bucket runs under, or null for a bucket stored before it was recorded. */
function currentConfig(stored: StoredBucket): (LimiterConfig & { seen_ms: number }) | null {
  if (stored.requests_per_hour === undefined || stored.config_version === undefined) return null;
  return { requests_per_hour: stored.requests_per_hour, burst: stored.capacity, version: stored.config_version, seen_ms: stored.config_seen_ms ?? 0 };
}
