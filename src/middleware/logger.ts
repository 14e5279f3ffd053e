import type { Context, MiddlewareHandler } from "hono";
import type { App, AppEnv } from "../env";
import { errorText, type EventFields, logEvent, type RequestErrorEvent, type RequestLineField, type RequestLogField, writeLine } from "../log";
import { routeLiterals, routeTemplate } from "./routing";

/**
 * One structured JSON line per request (the design document's fields), written at the level of its
 * status. Customer ids never appear in the clear: routes put the pseudonym (`customer_ref`) into
 * `logFields`, and `endpoint` is a route template, never the path as sent.
 */
export function requestLogger(app: App): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = Date.now();
    await next();
    const status = c.res.status;
    const level = status >= 500 ? "error" : status >= 400 ? "warn" : "info";
    const standard = {
      timestamp: new Date().toISOString(),
      level,
      request_id: c.get("requestId"),
      merchant_id: c.get("merchant")?.merchant_id ?? null,
      endpoint: loggedEndpoint(app, c.req.path),
      method: c.req.method,
      status_code: status,
      latency_ms: Date.now() - started,
      user_agent: c.req.header("User-Agent") ?? null,
      cf_country: c.req.header("CF-IPCountry") ?? (c.req.raw.cf?.country as string | undefined) ?? null,
    } satisfies Record<RequestLineField, unknown>; // every field of REQUEST_LINE_FIELDS, and no other
    writeLine(level, { ...standard, ...c.get("logFields") });
  };
}

/** Adds a field to this request's log line (e.g. customer_ref, cache, error_code): one of REQUEST_LOG_FIELDS, which README's "Logs" table lists. */
export function logField(c: { get: (k: "logFields") => Partial<Record<RequestLogField, unknown>> }, key: RequestLogField, value: unknown): void {
  c.get("logFields")[key] = value;
}

/** A separate error line for a failure the request survives (degraded answer, cache trouble), tied to it by request id. */
export function logRequestError(c: Context<AppEnv>, event: RequestErrorEvent, err: unknown): void {
  logEvent<RequestErrorEvent, EventFields<RequestErrorEvent>>(event, { request_id: c.get("requestId"), merchant_id: c.get("merchant")?.merchant_id ?? null, error: errorText(err) });
}

/**
 * Customer routes carry the id in the path (API.md §3), and a path no route takes may carry one
 * anywhere (`//v1/personalize/customers/<id>`): a known path is logged as its route template, an
 * unknown one as `(unmatched)` with every segment that is not a literal of some route as `*`.
 */
export function loggedEndpoint(app: App, path: string): string {
  const template = routeTemplate(app, path);
  if (template !== null) return template;
  const literals = routeLiterals(app);
  return `(unmatched) /${path.split("/").filter((s) => s !== "").map((s) => (literals.has(s) ? s : "*")).join("/")}`;
}
