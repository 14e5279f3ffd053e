import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";
import { ApiError, isDependencyFailure, validationError } from "../errors";
import { KEY_PATTERN, lookupKey } from "../storage/apiKeys";
import { readMerchant } from "../storage/merchants";
import { carriesBody } from "./bodyLimits";
import { logField, logRequestError } from "./logger";

const MERCHANT_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

/** The only routes a publishable (browser) key opens (API.md §1). */
export const PUBLISHABLE_ROUTES = new Set(["GET /v1/personalize/methods", "GET /v1/personalize/offers"]);

/**
 * The method a request is routed and authorized as: Hono answers HEAD with the GET handler (its
 * headers, no body), so a HEAD may do exactly what the same GET may, no more and no less.
 */
export const routedMethod = (method: string): string => (method === "HEAD" ? "GET" : method);

/**
 * The key a request presents: X-API-Key, `Authorization: Bearer <key>` (or a bare key there), or
 * `?api_key=`. Several places may carry one, but they must agree: two different values are refused
 * (401), never settled by an order the client cannot see, and a malformed one beside a good one is
 * not ignored. Only an Authorization header that holds no key of ours (Basic credentials for a
 * proxy, a gateway's token: not `tp2_`-prefixed) stands aside for a key sent elsewhere; with no key
 * beside it, it is presented as it is and fails as an invalid key.
 */
function presentedKey(c: Context<AppEnv>): string | undefined {
  const authz = c.req.header("Authorization")?.trim();
  const bearer = authz ? (/^Bearer\s+(\S+)$/i.exec(authz)?.[1] ?? authz) : undefined;
  const header = c.req.header("X-API-Key")?.trim();
  // Every ?api_key= value, not the first: a repeated one is a key presented twice as well.
  const queried = c.req.queries("api_key") ?? [];
  const ours = bearer !== undefined && (bearer.startsWith("tp2_") || (!header && !queried.some(Boolean)));
  const presented = [header, ours ? bearer : undefined, ...queried].filter((k): k is string => !!k);
  if (new Set(presented).size > 1) throw new ApiError("INVALID_API_KEY", "Two different API keys were presented (X-API-Key, Authorization, api_key); send one");
  // The same key repeated is a repeated parameter, a 400 like any other, but before the limiter spends a token on it.
  if (queried.length > 1) throw validationError([{ path: "api_key", message: "given more than once; send it once" }]);
  return presented[0];
}

/**
 * Merchant authentication: key → key record and merchant. What the key may do is decided by
 * `merchantAuthorization`, which runs after the rate limiter, so a forbidden request from a valid
 * key is counted and carries the RateLimit-* headers like any other answer to that merchant.
 */
export function merchantAuth(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const key = presentedKey(c);
    if (!key) throw new ApiError("MISSING_API_KEY", "An API key is required (X-API-Key header or Authorization: Bearer)");
    if (!KEY_PATTERN.test(key)) throw new ApiError("INVALID_API_KEY", "The API key is malformed, unknown or revoked");

    const waitUntil = (p: Promise<unknown>) => c.executionCtx.waitUntil(p);
    let record;
    let merchant;
    try {
      record = await lookupKey(c.env, key, waitUntil);
      if (record && !record.revoked) merchant = await readMerchant(c.env, record.merchant_id, waitUntil);
    } catch (err) {
      // Our own bug or a misconfiguration (no such table: migrations not applied) is a 500, noticed
      // as one, never a "retry" that cannot succeed.
      if (!isDependencyFailure(err)) throw err;
      logRequestError(c, "key verification failed", err);
      throw new ApiError("UNAVAILABLE", "The API key cannot be verified right now; retry");
    }
    if (!record || record.revoked || !merchant) throw new ApiError("INVALID_API_KEY", "The API key is malformed, unknown or revoked");

    c.set("apiKey", record);
    c.set("merchant", merchant);
    logField(c, "key_id", record.key_id);
    return next();
  };
}

/**
 * Merchant authorization: key type limits, the origin check for browser keys and the
 * key-to-merchant binding of every `merchant_id` the request names (query, body, batch events).
 */
export function merchantAuthorization(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const record = c.get("apiKey");
    const merchant = c.get("merchant");
    if (record.type === "publishable") {
      if (!PUBLISHABLE_ROUTES.has(`${routedMethod(c.req.method)} ${c.req.path}`)) {
        throw new ApiError("KEY_NOT_ALLOWED", "A publishable key opens only GET /v1/personalize/methods and /offers; use a secret key");
      }
      const origin = c.req.header("Origin");
      if (origin && !merchant.allowed_origins.includes(origin)) {
        throw new ApiError("ORIGIN_NOT_ALLOWED", `Origin ${origin} is not in the merchant's allowed_origins`);
      }
      // After the origin, before the route's schema: naming a customer is forbidden whatever the value looks
      // like (an empty, malformed or repeated customer_id is the same 403, never a format hint).
      if (c.req.query("customer_id") !== undefined) {
        throw new ApiError("KEY_NOT_ALLOWED", "A publishable key cannot name a customer; open a checkout session with the secret key and pass its client_secret");
      }
    }

    await assertOwnMerchant(c, merchant.merchant_id);
    return next();
  };
}

async function assertOwnMerchant(c: Context<AppEnv>, own: string): Promise<void> {
  const named: unknown[] = [c.req.query("merchant_id")];
  // Only a body bodyLimits has bounded: a GET's is never read (nor does it name a merchant).
  if (carriesBody(c.req.method) && (c.req.header("Content-Type") ?? "").toLowerCase().includes("json") && c.req.raw.body) {
    try {
      const body = (await c.req.json()) as unknown;
      if (body && typeof body === "object") {
        const obj = body as { merchant_id?: unknown; events?: unknown };
        named.push(obj.merchant_id);
        if (Array.isArray(obj.events)) for (const e of obj.events) if (e && typeof e === "object") named.push((e as { merchant_id?: unknown }).merchant_id);
      }
    } catch {
      // bodyLimits has already rejected malformed JSON; nothing to compare here.
    }
  }
  for (const value of named) {
    // A malformed id names no merchant: the route's validator answers it with 400.
    if (typeof value === "string" && MERCHANT_ID.test(value) && value !== own) {
      throw new ApiError("MERCHANT_MISMATCH", "merchant_id names another merchant than the API key's");
    }
  }
}
