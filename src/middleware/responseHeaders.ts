import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";

/**
 * What an answer may do when a browser renders it: nothing. A JSON answer loads no script, style or
 * frame, and is never framed; the one HTML page (`/docs`, src/routes/openapi.ts) sets its own policy.
 */
export const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/**
 * Headers every answer carries, errors included. `Cache-Control: no-store` unless the route chose a
 * policy (only the public OpenAPI document does): answers name customers' payment habits, sessions
 * and keys, and a browser or proxy cache must keep none of them (a GET keyed by `?api_key=…&client_secret=…`
 * looks cacheable to either). `X-Content-Type-Options: nosniff`: a JSON answer that echoes input
 * is never sniffed into a script or a page. No answer may be framed by another site
 * (`frame-ancestors 'none'`, and `X-Frame-Options: DENY` for browsers without CSP), and none sends
 * its URL (`?api_key=`, `?client_secret=`) on as a Referer (`Referrer-Policy: no-referrer`).
 */
export function responseHeaders(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await next();
    if (!c.res.headers.has("Cache-Control")) c.res.headers.set("Cache-Control", "no-store");
    c.res.headers.set("X-Content-Type-Options", "nosniff");
    if (!c.res.headers.has("Content-Security-Policy")) c.res.headers.set("Content-Security-Policy", API_CSP);
    c.res.headers.set("X-Frame-Options", "DENY");
    c.res.headers.set("Referrer-Policy", "no-referrer");
  };
}
