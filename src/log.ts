/**
 * One JSON line per event, the shape every log line of the worker shares: `timestamp`, `level`,
 * `message`, then the event's fields. Request lines (src/middleware/logger.ts) add the design
 * document's request fields. Customer ids never appear in the clear: callers pass pseudonyms.
 */
export function logLine(level: LogLevel, message: string, fields: Record<string, unknown> = {}): void {
  writeLine(level, { timestamp: new Date().toISOString(), level, message, ...fields });
}

export type LogLevel = "info" | "warn" | "error";

/** The fields requestLogger writes on every request's line (src/middleware/logger.ts). */
export const REQUEST_LINE_FIELDS = ["timestamp", "level", "request_id", "merchant_id", "endpoint", "method", "status_code", "latency_ms", "user_agent", "cf_country"] as const;
export type RequestLineField = (typeof REQUEST_LINE_FIELDS)[number];

/**
 * The fields routes and middleware may add to a request's line (logField takes no other name), so
 * this list and the README's "Logs" table, which test/unit/logFields.test.ts holds equal to it and
 * to REQUEST_LINE_FIELDS, name every field a request line can carry.
 */
export const REQUEST_LOG_FIELDS = [
  "key_id", "customer_ref", "error_code", "error", "stack",
  "rate_limited", "rate_limiter", "visitor_limiter",
  "cache", "degraded", "personalized", "fallback_reason", "guest", "decision_id", "offers_shown",
  "checkout_session", "session_capped_by_deletion", "idempotent_replay", "d1_error", "kv_error",
  "event_id", "events", "queue_error",
  "deletion", "cache_error", "cache_peers_left",
  "analytics_window_hours", "dead_letter_queue", "redriven",
] as const;
export type RequestLogField = (typeof REQUEST_LOG_FIELDS)[number];

/** Writes through the console method of its level: the platform (wrangler tail, Workers Logs' level filter) reads the level from that, not from the JSON. */
export function writeLine(level: LogLevel, line: Record<string, unknown>): void {
  console[level === "info" ? "log" : level](JSON.stringify(line));
}

/** Where an unexpected error was thrown: the stack's frames, without the first line (the message, which `error` already holds). */
export function stackFrames(err: unknown): string | undefined {
  if (!(err instanceof Error) || !err.stack) return undefined;
  const frames = err.stack.split("\n").filter((l) => /^\s+at /.test(l));
  return frames.length > 0 ? frames.map((l) => l.trim()).join("\n") : undefined;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
