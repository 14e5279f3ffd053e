import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";

/** API.md §1: JSON responses say `charset=utf-8` (Hono's c.json sends a bare application/json). */
export function jsonCharset(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await next();
    const type = c.res.headers.get("Content-Type");
    if (type === "application/json") c.res.headers.set("Content-Type", "application/json; charset=utf-8");
  };
}
