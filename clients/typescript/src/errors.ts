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

  /** Builds the error from a non-2xx response whose body openapi-fetch has already parsed (or not). */
  static fromResponse(response: Response, body: unknown): Tap2Error {
    const error = isErrorBody(body) ? body.error : null;
    return new Tap2Error({
      status: response.status,
      code: error?.code ?? `HTTP_${response.status}`,
      message: error?.message ?? (response.statusText || `HTTP ${response.status}`),
      requestId: error?.request_id ?? response.headers.get("X-Request-Id"),
      details: error?.details,
      retryAfterSeconds: parseRetryAfter(response.headers.get("Retry-After"), Date.now()),
    });
  }
}

interface ErrorBody {
  error: { code: string; message: string; request_id?: string; details?: Tap2ErrorDetail[] };
}

function isErrorBody(body: unknown): body is ErrorBody {
  if (typeof body !== "object" || body === null || !("error" in body)) return false;
  const error = (body as { error: unknown }).error;
  return typeof error === "object" && error !== null && typeof (error as { code?: unknown }).code === "string";
}

/** Retry-After as delta-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | null, nowMs: number): number | null {
  if (value === null || value.trim() === "") return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, (date - nowMs) / 1000);
}
