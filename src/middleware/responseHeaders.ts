import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";

/**
 * Headers every answer carries, errors included. `Cache-Control: no-store` unless the route chose a
 * policy (only the public OpenAPI document does): answers name customers' payment habits, sessions
 * and keys, and a browser or proxy cache must keep none of them (a GET keyed by `?api_key=…&client_secret=…`
 * looks cacheable to either). `X-Content-Type-Options: nosniff`: a JSON answer that echoes input
 * is never sniffed into a script or a page.
 */
export function responseHeaders(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await next();
    if (!c.res.headers.has("Cache-Control")) c.res.headers.set("Cache-Control", "no-store");
    c.res.headers.set("X-Content-Type-Options", "nosniff");
  };
}
