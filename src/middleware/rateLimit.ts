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
 * Requests one visitor may send per minute with a publishable key, per merchant and Cloudflare
 * location: the VISITOR_LIMITER binding's `simple` limit in every wrangler config (check:config
 * holds them equal), repeated here for the error message.
 */
export const VISITOR_LIMIT_PER_MINUTE = 120;
export const VISITOR_PERIOD_SECONDS = 60;

/**
 * Per-merchant token bucket (API.md §1). Runs after auth on every merchant route: one Durable
 * Object round trip, then the RateLimit-* headers on whatever the route answers, errors included.
 * When the limiter fails the request goes through without the headers (docs/rate-limiting.md).
 *
 * A publishable key sits in a public page, so for a merchant with `features.visitor_limit` on, a
 * browser request first passes a limit of its own per visitor (client IP; an IPv6 address counts as
 * its /64) and merchant: one script
 * replaying the key is refused there and never spends the merchant's tokens, which its checkout
 * pages and backend share. Refused, it is a 429 whose RateLimit-* headers are the merchant bucket's
 * as it stands (read without taking a token).
 */
export function rateLimit(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (c.env.RATE_LIMIT_ENABLED === "false") return next();
    const merchant = c.get("merchant");
    const config: LimiterConfig = { ...limitsFor(merchant), version: Date.parse(merchant.updated_at) };
    if (merchant.features.visitor_limit && c.get("apiKey").type === "publishable" && !(await visitorAllowed(c, merchant.merchant_id))) {
      logField(c, "rate_limited", "visitor");
      const bucket = await consultLimiter(c, merchant.merchant_id, config, "peek");
      throw new ApiError(
        "RATE_LIMITED",
        `More than ${VISITOR_LIMIT_PER_MINUTE} requests a minute from this client with a publishable key; retry in ${VISITOR_PERIOD_SECONDS} s`,
        undefined,
        { "Retry-After": String(VISITOR_PERIOD_SECONDS), ...(bucket ? rateLimitHeaders(bucket.limits, bucket) : {}) },
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

/**
 * The visitor of a request: its client address as Cloudflare reports it (`CF-Connecting-IP`, which a
 * client cannot set through Cloudflare), an IPv6 address cut to its /64 (one subscriber's network).
 * Null when there is none (a request that did not come through Cloudflare's edge).
 */
export function visitorOf(address: string | undefined): string | null {
  const ip = address?.trim().toLowerCase();
  if (!ip) return null;
  if (!ip.includes(":")) return /^\d{1,3}(\.\d{1,3}){3}$/.test(ip) ? ip : null;
  const mapped = /^::ffff:(\d{1,3}(\.\d{1,3}){3})$/.exec(ip); // an IPv4 client seen through IPv6
  if (mapped) return mapped[1]!;
  const [head = "", tail] = ip.split("::");
  const groups = head === "" ? [] : head.split(":");
  // Only the first four groups matter; "::" stands for zeros (none at all when the address has all eight).
  if (tail !== undefined) while (groups.length < 4) groups.push("0");
  if (groups.length < 4 || !groups.slice(0, 4).every((g) => /^[0-9a-f]{1,4}$/.test(g))) return null;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":")}::/64`;
}

/** Whether the visitor is within its per-minute limit; true (fail open, logged) when the binding fails or no visitor is known. */
async function visitorAllowed(c: Context<AppEnv>, merchantId: string): Promise<boolean> {
  const visitor = visitorOf(c.req.header("CF-Connecting-IP"));
  if (visitor === null) return true;
  try {
    return (await withTimeout(c.env.VISITOR_LIMITER.limit({ key: `${merchantId}|${visitor}` }), "visitor limiter")).success;
  } catch (err) {
    logField(c, "visitor_limiter", "unavailable");
    logLine("error", "visitor limiter unavailable; request allowed to the merchant bucket", {
      metric: "visitor_limiter_unavailable",
      request_id: c.get("requestId"),
      merchant_id: merchantId,
      error: errorText(err),
    });
    return true;
  }
}

async function withTimeout<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${LIMITER_TIMEOUT_MS} ms`)), LIMITER_TIMEOUT_MS);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

/** The merchant's bucket verdict (`peek`: without taking a token), or null (fail open, logged and counted) when the limiter fails. */
async function consultLimiter(c: Context<AppEnv>, merchantId: string, config: LimiterConfig, mode: "take" | "peek"): Promise<RateLimitVerdict | null> {
  try {
    const stub = c.env.RATE_LIMITER.get(c.env.RATE_LIMITER.idFromName(merchantId));
    return await withTimeout(mode === "take" ? stub.take(config) : stub.peek(config), "rate limiter");
  } catch (err) {
    logField(c, "rate_limiter", "unavailable");
    logLine("error", "rate limiter unavailable; request allowed without limiting", {
      metric: "rate_limiter_unavailable",
      request_id: c.get("requestId"),
      merchant_id: merchantId,
      error: errorText(err),
    });
    return null;
  }
}
