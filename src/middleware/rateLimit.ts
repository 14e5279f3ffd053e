import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { errorText, logLine } from "../log";
import type { BucketLimits } from "../ratelimit/bucket";
import type { LimiterConfig, RateLimitVerdict } from "../ratelimit/durableObject";
import { limitsFor } from "../ratelimit/tiers";
import { logField } from "./logger";

/** A limiter slower than this counts as unreachable: checkout availability beats strict limiting. */
export const LIMITER_TIMEOUT_MS = 500;

/**
 * Per-merchant token bucket (API.md §1). Runs after auth on every merchant route: one Durable
 * Object round trip, then the RateLimit-* headers on whatever the route answers, errors included.
 * When the limiter fails the request goes through without the headers (docs/rate-limiting.md).
 */
export function rateLimit(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (c.env.RATE_LIMIT_ENABLED === "false") return next();
    const merchant = c.get("merchant");
    const verdict = await consultLimiter(c, merchant.merchant_id, { ...limitsFor(merchant), version: Date.parse(merchant.updated_at) });
    if (!verdict) return next();

    // The limits the bucket applied: this isolate's copy of the config may be older than the object's.
    const { limits } = verdict;
    const headers = rateLimitHeaders(limits, verdict);
    if (!verdict.allowed) {
      logField(c, "rate_limited", true);
      throw new ApiError(
        "RATE_LIMITED",
        `Rate limit of ${limits.requests_per_hour} requests per hour (burst ${limits.burst}) exceeded; retry in ${verdict.retry_after_seconds} s`,
        undefined,
        { "Retry-After": String(verdict.retry_after_seconds), ...headers },
      );
    }
    await next();
    // Errors thrown downstream have already been rendered into c.res by app.onError.
    for (const [name, value] of Object.entries(headers)) c.res.headers.set(name, value);
  };
}

export function rateLimitHeaders(limits: BucketLimits, verdict: RateLimitVerdict): Record<string, string> {
  return {
    "RateLimit-Limit": String(limits.requests_per_hour),
    "RateLimit-Remaining": String(verdict.remaining),
    "RateLimit-Reset": String(verdict.reset_seconds),
  };
}

/** The merchant's bucket verdict, or null (fail open, logged and counted) when the limiter fails. */
async function consultLimiter(c: Context<AppEnv>, merchantId: string, config: LimiterConfig): Promise<RateLimitVerdict | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const stub = c.env.RATE_LIMITER.get(c.env.RATE_LIMITER.idFromName(merchantId));
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`rate limiter did not answer within ${LIMITER_TIMEOUT_MS} ms`)), LIMITER_TIMEOUT_MS);
    });
    return await Promise.race([stub.take(config), timeout]);
  } catch (err) {
    logField(c, "rate_limiter", "unavailable");
    logLine("error", "rate limiter unavailable; request allowed without limiting", {
      metric: "rate_limiter_unavailable",
      request_id: c.get("requestId"),
      merchant_id: merchantId,
      error: errorText(err),
    });
    return null;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}
