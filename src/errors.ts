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
    this.headers = headers;
  }
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
