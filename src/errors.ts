import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export const ERROR_CODES = {
  VALIDATION_ERROR: 400,
  INVALID_JSON: 400,
  MISSING_API_KEY: 401,
  INVALID_API_KEY: 401,
  INVALID_ADMIN_TOKEN: 401,
  INVALID_CLIENT_SECRET: 401,
  MERCHANT_MISMATCH: 403,
  KEY_NOT_ALLOWED: 403,
  ORIGIN_NOT_ALLOWED: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  PRECONDITION_FAILED: 412,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  INTERNAL_ERROR: 500,
  UNAVAILABLE: 503,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorDetail {
  path: string;
  message: string;
}

const DOCS_BASE = "https://docs.tap2.com/errors#";

/** The one error type of the API: thrown anywhere, rendered by `app.onError`. */
export class ApiError extends Error {
  readonly status: ContentfulStatusCode;
  readonly headers: Record<string, string>;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
    this.status = ERROR_CODES[code];
    // Every 503 says when to retry (a dependency is down; clients back off from there), and every 401
    // names its scheme (RFC 9110 §15.5.2 requires WWW-Authenticate on a 401).
    this.headers = { ...(code === "UNAVAILABLE" ? { "Retry-After": "1" } : {}), ...(this.status === 401 ? { "WWW-Authenticate": challengeOf(code) } : {}), ...headers };
  }
}

const API_KEY_REALM = "tap2";

/** A 401's challenge (WWW-Authenticate) that refused the API key: not the admin token, not a client secret. */
export const challengesApiKey = (challenge: string | null): boolean => challenge !== null && new RegExp(`^Bearer realm="${API_KEY_REALM}"(,|$)`).test(challenge);

/**
 * The challenge of a 401: the API key (or admin token) as a bearer credential, with RFC 6750's error
 * code when one was sent. A checkout session's client secret has a realm of its own, so a client
 * that reads the challenge does not take a bad session for a bad API key (the key was fine).
 */
function challengeOf(code: ErrorCode): string {
  const realm = code === "INVALID_ADMIN_TOKEN" ? "tap2-admin" : code === "INVALID_CLIENT_SECRET" ? "tap2-checkout-session" : API_KEY_REALM;
  return code === "MISSING_API_KEY" ? `Bearer realm="${realm}"` : `Bearer realm="${realm}", error="invalid_token"`;
}

/**
 * Whether `err` is a storage or platform dependency failing (D1, KV, Queues, Durable Objects) rather
 * than a bug of ours. The bindings throw plain `Error`s, so only their messages tell: transient
 * failures (connection lost, overloaded, timed out, reset, a KV/Queue operation refused) are
 * `503 UNAVAILABLE`, which the client may retry (API.md §1); an SQL or type error would be our bug
 * and stays `500`, so it is noticed.
 */
const DEPENDENCY_FAILURE = /\bD1_ERROR\b|\bD1 DB\b|\bKV (GET|PUT|DELETE|LIST)\b|\bQueue (send|sendBatch)\b|Durable Object|Network connection lost|overloaded|timed out|timeout|was reset|Too many requests|internal error/i;
const OUR_BUG = /SQLITE_ERROR|SQLITE_CONSTRAINT|SQLITE_MISMATCH|no such (table|column|function)|syntax error|D1_TYPE_ERROR|D1_COLUMN_NOTFOUND|wrong number of parameter|Wrong number of parameter/i;

export function isDependencyFailure(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return DEPENDENCY_FAILURE.test(message) && !OUR_BUG.test(message);
}

export function validationError(details: ErrorDetail[]): ApiError {
  const first = details[0];
  const message = first ? `${first.path || "request"}: ${first.message}` : "Invalid request";
  return new ApiError("VALIDATION_ERROR", message, details);
}

export function errorBody(code: ErrorCode, message: string, requestId: string, details?: ErrorDetail[]) {
  return {
    error: {
      code,
      message,
      request_id: requestId,
      documentation_url: DOCS_BASE + code,
      ...(details ? { details } : {}),
    },
  };
}

export function renderError(c: Context, err: ApiError): Response {
  const requestId = (c.get("requestId") as string | undefined) ?? "req_unknown";
  for (const [name, value] of Object.entries(err.headers)) c.header(name, value);
  return c.json(errorBody(err.code, err.message, requestId, err.details), err.status);
}
