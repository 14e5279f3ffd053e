/** One field problem of a 400 VALIDATION_ERROR. */
export interface Tap2ErrorDetail {
  path: string;
  message: string;
}

export interface Tap2ErrorInit {
  status: number;
  code: string;
  message: string;
  requestId?: string | null;
  details?: Tap2ErrorDetail[];
  retryAfterSeconds?: number | null;
  cause?: unknown;
}

/**
 * The one error every client call throws: an API error body (`{error: {code, message, request_id}}`),
 * or, with `status` 0, a transport failure (`TIMEOUT`, `NETWORK_ERROR`) that never reached an answer.
 */
export class Tap2Error extends Error {
  override readonly name = "Tap2Error";
  readonly status: number;
  readonly code: string;
  readonly requestId: string | null;
  readonly details: Tap2ErrorDetail[] | undefined;
  /** The server's Retry-After (429/503), when it sent one. */
  readonly retryAfterSeconds: number | null;

  constructor(init: Tap2ErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.code = init.code;
    this.requestId = init.requestId ?? null;
    this.details = init.details;
    this.retryAfterSeconds = init.retryAfterSeconds ?? null;
  }

  /**
   * Builds the error from a non-2xx response whose body openapi-fetch has already parsed (or not).
   * An API error body is `{"error": {"code": "<non-empty string>", …}}`; anything else (a proxy's
   * HTML page, an empty body, other JSON) is `HTTP_<status>` with the message
   * `HTTP <status> (the answer is not an API error body)`. The Python and PHP clients say the same.
   */
  static fromResponse(response: Response, body: unknown): Tap2Error {
    const headerRequestId = response.headers.get("X-Request-Id");
    const retryAfterSeconds = parseRetryAfter(response.headers.get("Retry-After"), Date.now());
    const error = isErrorBody(body) ? body.error : null;
    if (error === null) {
      return new Tap2Error({
        status: response.status,
        code: `HTTP_${response.status}`,
        message: `HTTP ${response.status} (the answer is not an API error body)`,
        requestId: headerRequestId,
        retryAfterSeconds,
      });
    }
    return new Tap2Error({
      status: response.status,
      code: error.code,
      message: nonEmptyString(error.message) ?? `HTTP ${response.status}`,
      requestId: nonEmptyString(error.request_id) ?? headerRequestId,
      details: Array.isArray(error.details) ? (error.details as Tap2ErrorDetail[]) : undefined,
      retryAfterSeconds,
    });
  }
}

interface ErrorBody {
  error: { code: string; message?: unknown; request_id?: unknown; details?: unknown };
}

function isErrorBody(body: unknown): body is ErrorBody {
  if (typeof body !== "object" || body === null || !("error" in body)) return false;
  const error = (body as { error: unknown }).error;
  return typeof error === "object" && error !== null && !Array.isArray(error) && nonEmptyString((error as { code?: unknown }).code) !== null;
}

function nonEmptyString(value: unknown): string | null {
  return typeof value === "string" && value !== "" ? value : null;
}

/** Retry-After as delta-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | null, nowMs: number): number | null {
  if (value === null || value.trim() === "") return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, (date - nowMs) / 1000);
}
