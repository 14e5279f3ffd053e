import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { errorText, logEvent } from "../log";
import type { BucketLimits } from "../ratelimit/bucket";
import type { LimiterConfig, RateLimitVerdict } from "../ratelimit/durableObject";
import { limitsFor } from "../ratelimit/tiers";
import { VISITOR_LIMIT, VISITOR_PERIOD_SECONDS, visitorOf } from "../ratelimit/visitor";
import { withTimeout } from "../storage/timeout";
import { logField } from "./logger";

/** A limiter slower than this counts as unreachable: checkout availability beats strict limiting. */
export const LIMITER_TIMEOUT_MS = 500;

/**
 * Per-merchant token bucket (API.md §1). Runs after auth on every merchant route: one Durable
 * Object round trip, then the RateLimit-* headers on whatever the route answers, errors included.
 * When the limiter fails the request goes through without the headers (docs/rate-limiting.md).
 *
 * A publishable key sits in a public page, so for a merchant with `features.visitor_limit` on, a
 * browser request first passes a limit of its own per visitor (client IP; an IPv6 address counts as
 * its /64) and merchant: one script replaying the key is refused there and never spends the
 * merchant's tokens, which its checkout pages and backend share. Refused, it is a 429 whose
 * RateLimit-* headers are the merchant bucket's as it stands (read without taking a token).
 */
export function rateLimit(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (c.env.RATE_LIMIT_ENABLED === "false") return next();
    const merchant = c.get("merchant");
    // created_at tells a merchant re-created with the same id from the one before it (its bucket starts full).
    const config: LimiterConfig = { ...limitsFor(merchant), version: Date.parse(merchant.updated_at), incarnation: merchant.created_at };
    if (merchant.features.visitor_limit && c.get("apiKey").type === "publishable" && !(await visitorAllowed(c, merchant.merchant_id))) {
      logField(c, "rate_limited", "visitor");
      const bucket = await consultLimiter(c, merchant.merchant_id, config, "peek");
      // Not sooner than the bucket itself would let the request through, when it is empty too.
      const retry = Math.max(VISITOR_PERIOD_SECONDS, bucket && !bucket.allowed ? bucket.retry_after_seconds : 0);
      throw new ApiError(
        "RATE_LIMITED",
        `More than ${VISITOR_LIMIT} requests in ${VISITOR_PERIOD_SECONDS} s from this client with a publishable key; retry in ${retry} s`,
        undefined,
        { "Retry-After": String(retry), ...(bucket ? rateLimitHeaders(bucket.limits, bucket) : {}) },
      );
    }
    const verdict = await consultLimiter(c, merchant.merchant_id, config, "take");
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

/** Whether the visitor is within its limit for the period; true (fail open, logged) when the binding fails or no visitor is known. */
async function visitorAllowed(c: Context<AppEnv>, merchantId: string): Promise<boolean> {
  const visitor = visitorOf(c.req.header("CF-Connecting-IP"));
  if (visitor === null) return true;
  try {
    return (await withTimeout(c.env.VISITOR_LIMITER.limit({ key: `${merchantId}|${visitor}` }), "visitor limiter", LIMITER_TIMEOUT_MS)).success;
  } catch (err) {
    logField(c, "visitor_limiter", "unavailable");
    logEvent("visitor limiter unavailable; request allowed to the merchant bucket", {
      metric: "visitor_limiter_unavailable",
      request_id: c.get("requestId"),
      merchant_id: merchantId,
      error: errorText(err),
    });
    return true;
  }
}

/** The merchant's bucket verdict (`peek`: without taking a token), or null (fail open, logged and counted) when the limiter fails. */
async function consultLimiter(c: Context<AppEnv>, merchantId: string, config: LimiterConfig, mode: "take" | "peek"): Promise<RateLimitVerdict | null> {
  try {
    const stub = c.env.RATE_LIMITER.get(c.env.RATE_LIMITER.idFromName(merchantId));
    return await withTimeout(mode === "take" ? stub.take(config) : stub.peek(config), "rate limiter", LIMITER_TIMEOUT_MS);
  } catch (err) {
    logField(c, "rate_limiter", "unavailable");
    const event = mode === "take" ? "rate limiter unavailable; request allowed without limiting" : "rate limiter unavailable; request refused by the visitor limit, without RateLimit headers";
    logEvent(event, {
      metric: "rate_limiter_unavailable",
      mode,
      request_id: c.get("requestId"),
      merchant_id: merchantId,
      error: errorText(err),
    });
    return null;
  }
}
