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
 * or, with `status` 0, a transport failure (`TIMEOUT`, `NETWORK_ERROR`) that never reached an answer,
 * or `ABORTED`; a 3xx answer is `REDIRECT` (never followed).
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

/** The longest Retry-After the clients read, in seconds: a longer one (or one that overflows) is this (RFC 9111 §1.2.2). */
export const MAX_RETRY_AFTER_SECONDS = 2 ** 31;

/**
 * Retry-After in seconds: delta-seconds (digits, optionally a decimal fraction) or an HTTP-date
 * ({@link parseHttpDate}); null when absent or anything else (`nan`, `inf`, `-1`, `+5`, `1e3`,
 * `0x10`), so the caller backs off. A value past {@link MAX_RETRY_AFTER_SECONDS} is capped to it.
 * The Python and PHP clients read it the same way.
 */
export function parseRetryAfter(value: string | null, nowMs: number): number | null {
  if (value === null) return null;
  const trimmed = value.replace(/^[ \t]+|[ \t]+$/g, "");
  let seconds: number | null;
  if (/^[0-9]+(?:\.[0-9]+)?$/.test(trimmed)) seconds = Number(trimmed);
  else {
    const date = parseHttpDate(trimmed, nowMs);
    seconds = date === null ? null : Math.max(0, (date - nowMs) / 1000);
  }
  return seconds === null ? null : Math.min(seconds, MAX_RETRY_AFTER_SECONDS);
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const IMF_FIXDATE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const RFC850_DATE = /^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\d{2})-(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const ASCTIME_DATE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ( \d|\d{2}) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/;

/**
 * An HTTP-date (RFC 9110 §5.6.7) in milliseconds since the epoch, or null: IMF-fixdate
 * (`Sun, 06 Nov 1994 08:49:37 GMT`) and the obsolete RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`)
 * and asctime (`Sun Nov  6 08:49:37 1994`, UTC) forms, exactly (case and spaces included), with a
 * real calendar date; nothing else (Date.parse also takes "2030", "Jan 1 2030", local times).
 * The Python and PHP clients parse the same forms the same way.
 */
export function parseHttpDate(value: string, nowMs: number): number | null {
  let parts: [string, string, string, string, string, string] | null = null; // day, month, year, h, m, s
  let m = IMF_FIXDATE.exec(value);
  if (m) parts = [m[1]!, m[2]!, m[3]!, m[4]!, m[5]!, m[6]!];
  else if ((m = RFC850_DATE.exec(value))) parts = [m[1]!, m[2]!, m[3]!, m[4]!, m[5]!, m[6]!];
  else if ((m = ASCTIME_DATE.exec(value))) parts = [m[2]!.trim(), m[1]!, m[6]!, m[3]!, m[4]!, m[5]!];
  if (parts === null) return null;
  const [day, month, hour, minute, second] = [Number(parts[0]), MONTHS.indexOf(parts[1]) + 1, Number(parts[3]), Number(parts[4]), Number(parts[5])];
  let year = Number(parts[2]);
  if (parts[2].length === 2) {
    // RFC 9110: a two-digit year more than 50 years ahead is the latest past year with those digits.
    const thisYear = new Date(nowMs).getUTCFullYear();
    year += thisYear - (thisYear % 100);
    if (year > thisYear + 50) year -= 100;
  }
  if (day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 60) return null;
  return ((daysFromCivil(year, month, day) * 24 + hour) * 60 + minute) * 60_000 + second * 1000;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}
