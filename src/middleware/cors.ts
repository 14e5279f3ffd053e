import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";
import { challengesApiKey } from "../errors";
import { MerchantId } from "../schemas/common";
import { KEY_PATTERN, lookupKey } from "../storage/apiKeys";
import { merchantsAllowingOrigin, readMerchant } from "../storage/merchants";

const ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
const ALLOW_HEADERS = "Content-Type, X-API-Key, Authorization, X-Request-Id, Idempotency-Key";
const EXPOSE_HEADERS = "X-Request-Id, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After";

/**
 * CORS per merchant `allowed_origins`, exact match only (never a reflected wildcard), and only on
 * merchant routes that exist (`isMerchantRoute`): no answer elsewhere (admin, health, an unknown
 * path) belongs to a merchant, so none is readable cross-origin nor preflighted.
 * A preflight carries no key, so it is allowed when the merchant it names (api_key or merchant_id
 * in the query) allows the origin, or, naming none, when some merchant does; the real request is
 * then checked against the key's own merchant. A 401 for a missing, unknown or revoked key follows
 * the keyless preflight's rule; no other answer without a merchant gets CORS headers.
 */
export function cors(isMerchantRoute: (path: string) => boolean): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const origin = c.req.header("Origin");
    if (!origin) {
      // The answer depends on Origin even when none was sent: a cache must not reuse it for one that has.
      await next();
      c.res.headers.append("Vary", "Origin");
      return;
    }

    if (c.req.method === "OPTIONS" && c.req.header("Access-Control-Request-Method")) {
      const headers = new Headers({ Vary: "Origin" });
      if (isMerchantRoute(c.req.path) && (await preflightAllowed(c, origin))) {
        headers.set("Access-Control-Allow-Origin", origin);
        headers.set("Access-Control-Allow-Methods", ALLOW_METHODS);
        headers.set("Access-Control-Allow-Headers", ALLOW_HEADERS);
        headers.set("Access-Control-Max-Age", "600");
      }
      return new Response(null, { status: 204, headers });
    }

    await next();
    c.res.headers.append("Vary", "Origin");
    const merchant = c.get("merchant");
    // With a key's merchant, its own list decides. A merchant route's 401 for a missing, unknown or
    // revoked key names no merchant's data: the rule of a keyless preflight decides it, so a checkout
    // page on an origin some merchant allows can read why its call failed instead of seeing a CORS
    // failure. Nothing else without a merchant (admin, health, demo) is ever readable cross-origin.
    if (merchant ? merchant.allowed_origins.includes(origin) : isMerchantRoute(c.req.path) && keyRefused(c) && (await someMerchantAllows(c, origin))) {
      c.res.headers.set("Access-Control-Allow-Origin", origin);
      c.res.headers.set("Access-Control-Expose-Headers", EXPOSE_HEADERS);
    }
  };
}

/** A 401 for the API key (its challenge says so: src/errors.ts). */
function keyRefused(c: Context<AppEnv>): boolean {
  return c.res.status === 401 && challengesApiKey(c.res.headers.get("WWW-Authenticate"));
}

async function someMerchantAllows(c: Context<AppEnv>, origin: string): Promise<boolean> {
  try {
    return (await merchantsAllowingOrigin(c.env.DB, origin)).length > 0;
  } catch {
    return false;
  }
}

async function preflightAllowed(c: Context<AppEnv>, origin: string): Promise<boolean> {
  try {
    const key = c.req.query("api_key");
    let merchantId = c.req.query("merchant_id");
    if (key) {
      // A key that cannot be one names no merchant: refused, not read as naming none (then any merchant's list would do).
      if (!KEY_PATTERN.test(key)) return false;
      const record = await lookupKey(c.env, key);
      merchantId = record && !record.revoked ? record.merchant_id : undefined;
      if (!merchantId) return false;
    }
    if (merchantId) {
      // Malformed ids name no merchant, and never reach storage (nor a KV key) on a keyless request.
      if (!MerchantId.safeParse(merchantId).success) return false;
      const merchant = await readMerchant(c.env, merchantId);
      return merchant?.allowed_origins.includes(origin) ?? false;
    }
    return (await merchantsAllowingOrigin(c.env.DB, origin)).length > 0;
  } catch {
    return false;
  }
}
