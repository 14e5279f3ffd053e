import type { OpenAPIHono } from "@hono/zod-openapi";
import type { ApiKeyRecord } from "./storage/apiKeys";
import type { RateLimiter } from "./ratelimit/durableObject";
import type { Merchant } from "./storage/merchants";
import type { RequestLogField } from "./log";

/** Bindings and secrets of the worker (wrangler*.toml, .dev.vars / `wrangler secret put`). */
export interface Env {
  DB: D1Database;
  CACHE: KVNamespace;
  FEEDBACK_QUEUE: Queue<unknown>;
  ANALYTICS_QUEUE: Queue<unknown>;
  RATE_LIMITER: DurableObjectNamespace<RateLimiter>;
  /** Workers Rate Limiting binding: requests per visitor (client IP) and merchant for publishable keys (src/middleware/rateLimit.ts). */
  VISITOR_LIMITER: RateLimit;
  ASSETS: Fetcher;
  ENVIRONMENT: string;
  /**
   * The API's public origin (`https://api.tap2-personalize.com`): the `servers` URL of
   * /v1/openapi.json, so the document never names whatever Host a request carried. Empty in
   * development, where the document names the request's origin for a loopback host, else "/".
   */
  PUBLIC_BASE_URL?: string;
  /** "false" switches analytics recording off (benchmarks only). */
  ANALYTICS_ENABLED?: string;
  /** "false" switches the per-merchant rate limiter off (benchmarks only); anything else keeps it on. */
  RATE_LIMIT_ENABLED?: string;
  /** Bearer token of the admin API; when unset every admin route answers 404. */
  ADMIN_TOKEN?: string;
  /** Key of the HMAC pseudonyms that stand for customer ids at rest. */
  PII_KEY: string;
  /** Key that signs decision ids. */
  SIGNING_KEY: string;
}

/** Per-request values set by the middleware chain. */
export interface Variables {
  requestId: string;
  /** Fields the request's log line carries besides the standard ones (logField, src/log.ts's list). */
  logFields: Partial<Record<RequestLogField, unknown>>;
  apiKey: ApiKeyRecord;
  merchant: Merchant;
}

export interface AppEnv {
  Bindings: Env;
  Variables: Variables;
}

export type App = OpenAPIHono<AppEnv>;
