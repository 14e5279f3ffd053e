/**
 * One JSON line per event, the shape every log line of the worker shares: `timestamp`, `level`,
 * `message`, then the event's fields. Request lines (src/middleware/logger.ts) add the design
 * document's request fields. Customer ids never appear in the clear: callers pass pseudonyms.
 */
function logLine(level: LogLevel, message: string, fields: Record<string, unknown>): void {
  writeLine(level, { timestamp: new Date().toISOString(), level, message, ...fields });
}

/**
 * Writes event line `event` (its `message`) at the level EVENT_LINES gives it, with exactly the
 * fields listed there: a field not listed, or a listed one (not marked `?`) left out, is a type
 * error, as is an event not listed.
 */
export function logEvent<E extends EventName, F extends EventFields<E>>(event: E, fields: F & { [K in Unlisted<F, E>]: never }): void {
  logLine(EVENT_LINES[event].level, event, fields);
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

/**
 * Every event line the worker writes (lines not tied to one request's line: scheduled jobs, queue
 * consumers, failures a request survives), by `message`: its level and its fields after
 * `timestamp`, `level` and `message`; a field marked `?` is written on some lines only. README's
 * "Logs" event table documents each, and test/unit/logFields.test.ts holds the two equal and finds
 * every event src writes here. Customer ids never appear (pseudonyms neither: no event line needs one).
 */
export const EVENT_LINES = {
  // src/jobs/scheduled.ts: one line per step of a cron run; the counts are the step's report.
  "scheduled job done": {
    level: "info",
    fields: ["job", "at", "duration_ms", "skipped?", "customers_purged?", "rows_deleted?", "unfinished?", "deleted?", "hours?", "merchant_hours?", "days?", "stale_dropped?", "statements?"],
  },
  "scheduled job failed": { level: "error", fields: ["job", "at", "error"] },
  "unknown cron, nothing run": { level: "error", fields: ["job", "cron"] },
  // src/jobs/queues.ts, delivery.ts and the consumers.
  "no consumer for queue": { level: "error", fields: ["queue"] },
  // error: a poison message is acked and gone (no dead letter keeps it); only our API writes these queues, so one is a bug.
  "poison feedback message dropped": { level: "error", fields: ["queue", "message_id", "attempts", "issues"] },
  "poison analytics message dropped": { level: "error", fields: ["queue", "message_id", "attempts", "issues"] },
  "feedback batch stored": {
    level: "info",
    fields: ["queue", "messages", "stored", "duplicates", "dropped_opted_out", "dropped_pending_deletion", "dropped_purged", "dropped_expired", "conversions_expired", "poison", "duration_ms"],
  },
  "feedback batch stored message by message": {
    level: "info",
    fields: ["queue", "messages", "stored", "duplicates", "dropped_opted_out", "dropped_pending_deletion", "dropped_purged", "dropped_expired", "conversions_expired", "failed", "poison", "duration_ms"],
  },
  "feedback batch write failed; retrying": { level: "error", fields: ["queue", "messages", "error"] },
  "feedback batch write failed again; storing message by message": { level: "error", fields: ["queue", "messages", "error"] },
  "feedback message write failed; retrying": { level: "error", fields: ["queue", "message_id", "attempts", "error"] },
  "profile refresh after feedback needed a retry": { level: "warn", fields: ["profiles", "failed", "error"] },
  "profile refresh after feedback failed": { level: "error", fields: ["profiles", "failed", "error"] },
  "cross-merchant peer profiles left to their cache TTL (KV operations per invocation)": { level: "warn", fields: ["dropped", "skipped"] },
  "dropping cross-merchant peer profiles failed": { level: "error", fields: ["error"] },
  "analytics batch stored": {
    level: "info",
    fields: ["queue", "messages", "decisions", "offers_shown", "messages_stored", "duplicates", "expired", "poison", "duration_ms"],
  },
  "analytics batch write failed; retrying": { level: "error", fields: ["queue", "messages", "error"] },
  "dead letters stored": {
    level: "warn",
    fields: ["queue", "original_queue", "messages", "stored", "duplicates", "dropped_purged", "truncated", "duration_ms"],
  },
  "dead letter write failed; retrying": { level: "error", fields: ["queue", "messages", "error"] },
  "dead letters lost": { level: "error", fields: ["queue", "metric", "messages", "message_ids", "error"] },
  // During a request, tied to its line by request_id (logRequestError: request_id, merchant_id, error).
  "analytics record dropped: the analytics queue refused it": {
    level: "error",
    fields: ["metric", "request_id", "kind", "decision_id?", "impression_id?", "merchant_id", "failures", "error"],
  },
  "rate limiter unavailable; request allowed without limiting": { level: "error", fields: ["metric", "mode", "request_id", "merchant_id", "error"] },
  "rate limiter unavailable; request refused by the visitor limit, without RateLimit headers": { level: "error", fields: ["metric", "mode", "request_id", "merchant_id", "error"] },
  "visitor limiter unavailable; request allowed to the merchant bucket": { level: "error", fields: ["metric", "request_id", "merchant_id", "error"] },
  "health check failed": { level: "error", fields: ["request_id", "check", "error"] },
  "key verification failed": { level: "error", fields: ["request_id", "merchant_id", "error"] },
  "checkout session read failed; answering degraded": { level: "error", fields: ["request_id", "merchant_id", "error"] },
  "profile read failed; answering degraded": { level: "error", fields: ["request_id", "merchant_id", "error"] },
  "popularity read failed; ranking without the prior": { level: "error", fields: ["request_id", "merchant_id", "error"] },
  "cache error": { level: "error", fields: ["request_id", "merchant_id", "error"] },
  "cached profile could not be updated": { level: "error", fields: ["request_id", "merchant_id", "error"] },
  "profile refresh failed": { level: "error", fields: ["request_id", "merchant_id", "error"] },
} as const satisfies Record<string, { level: LogLevel; fields: readonly string[] }>;

export type EventName = keyof typeof EVENT_LINES;
type FieldSpec<E extends EventName> = (typeof EVENT_LINES)[E]["fields"][number];
/** The names of the fields of event E (without the `?` of an optional one). */
export type EventFieldName<E extends EventName> = Unmarked<FieldSpec<E>>;
type OptionalField<E extends EventName> = Marked<FieldSpec<E>>;
type Unmarked<S extends string> = S extends `${infer N}?` ? N : S;
type Marked<S extends string> = S extends `${infer N}?` ? N : never;
export type EventFields<E extends EventName> = { [K in Exclude<EventFieldName<E>, OptionalField<E>>]: unknown } & { [K in OptionalField<E>]?: unknown };
/** Keys of F (of any member of a union) that event E does not list. */
type Unlisted<F, E extends EventName> = F extends unknown ? Exclude<keyof F, EventFieldName<E>> : never;
/** The events whose fields are those of logRequestError (src/middleware/logger.ts): request_id, merchant_id, error. */
export type RequestErrorEvent = {
  [E in EventName]: [FieldSpec<E>] extends ["request_id" | "merchant_id" | "error"] ? (["request_id" | "merchant_id" | "error"] extends [FieldSpec<E>] ? E : never) : never;
}[EventName];

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
