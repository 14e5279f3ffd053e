import { z } from "@hono/zod-openapi";
import { ISO_COUNTRIES, ISO_CURRENCIES } from "../catalog/iso";

/** Field formats of API.md §1, shared by every route. */

/** The id format of customers, merchants and client event ids: 1–128 characters of [A-Za-z0-9._:@-]. */
export const idOf128 = (example: string) =>
  z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9._:@-]+$/, "must be 1-128 characters of A-Z a-z 0-9 . _ : @ -")
    .openapi({ example });

/**
 * A customer or merchant id also names a path segment (/customers/{customer_id}/export, the admin
 * routes), and URL parsing removes the dot segments `.` and `..` (also spelled %2e): a customer with
 * such an id could never be exported or erased, a merchant never given keys. So these two ids, and
 * only they, are refused — a narrowing of API.md §1's format the README states.
 */
const pathSafeId = (example: string) =>
  idOf128(example).refine((id) => id !== "." && id !== "..", { message: "must not be . or .. (a URL path cannot carry them)" });

export const CustomerId = pathSafeId("cus_123");

export const MerchantId = pathSafeId("m_demo");

export const MethodId = z
  .string()
  .regex(/^[a-z0-9_]{1,64}$/, "must match ^[a-z0-9_]{1,64}$")
  .openapi({ example: "apple_pay" });

export const OfferId = z
  .string()
  .regex(/^[a-z0-9_]{1,64}$/, "must match ^[a-z0-9_]{1,64}$")
  .openapi({ example: "applepay_5off" });

export const Amount = z.number().int().min(0).max(1e12).openapi({ description: "Minor units (cents)", example: 9900 });

/** Query strings carry text: amounts arrive as digits. */
export const AmountQuery = z
  .string()
  .regex(/^\d{1,13}$/, "must be an integer number of minor units")
  .transform(Number)
  .pipe(Amount)
  .openapi({ type: "integer", minimum: 0, maximum: 1e12, example: 9900 });

export const Currency = z
  .string()
  .regex(/^[A-Z]{3}$/, "must be an ISO 4217 code of three capital letters")
  .refine((code) => ISO_CURRENCIES.has(code), "is not an ISO 4217 currency code")
  .openapi({ example: "USD" });

export const Country = z
  .string()
  .regex(/^[A-Z]{2}$/, "must be an ISO 3166-1 alpha-2 code")
  .refine((code) => ISO_COUNTRIES.has(code), "is not an ISO 3166-1 alpha-2 country code")
  .openapi({ example: "US" });

/**
 * Free text (a merchant's name, an offer's title). A lone UTF-16 surrogate is no character: D1
 * stores it as U+FFFD, so the text would read back changed and a repeated PATCH write every time.
 */
export const Text = z.string().refine((s) => s.isWellFormed(), "must be well-formed Unicode (no lone surrogate)");

/**
 * A header value taken as data (an Idempotency-Key). The runtime decodes header bytes as UTF-8 and
 * turns every byte that is not UTF-8 into U+FFFD, so keys sent in Latin-1 that differ only outside
 * ASCII (`payé`, `payè`) arrive as one (`pay\uFFFD`): a second payment would be dropped as a retry
 * of the first, a second checkout answered as the first's. Such a value is refused, not guessed at.
 */
export const HEADER_NOT_UTF8 = "holds bytes that are not UTF-8 (a character outside ASCII sent in another encoding, e.g. Latin-1): send the key in ASCII or UTF-8";
export const headerText = <T extends z.ZodString>(schema: T) => schema.refine((s) => !s.includes("\uFFFD"), HEADER_NOT_UTF8);

export const DeviceType = z.enum(["mobile", "desktop", "tablet"]);
export type DeviceType = z.infer<typeof DeviceType>;

/**
 * Date.parse rolls impossible dates over ("2026-02-30" is 2 March, "T24:00:00" the next day), so
 * a typo would silently move a window or an event; only a timestamp that reads back unchanged is one.
 */
export function isCalendarTimestamp(s: string): boolean {
  const ms = Date.parse(s);
  return !Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 19) === s.slice(0, 19);
}

/**
 * Why a timestamp of the right shape is no instant we take. A leap second (23:59:60, valid UTC and
 * RFC 3339) and 24:00 (end of day in ISO 8601 before 2019) are named, so the client knows what to send.
 */
function calendarProblem(s: string): string {
  if (s.slice(17, 19) === "60") return "has second 60: leap seconds are not accepted (send :59 of that minute)";
  if (s.slice(11, 13) === "24") return "has hour 24: send hour 00 of the next day";
  return "is not a valid date";
}

/** A list that repeats an entry (refused where a list names a set: methods, origins, countries…). */
export const hasDuplicates = (list: readonly unknown[]): boolean => new Set(list).size !== list.length;
export const DUPLICATES_MESSAGE = "must not contain duplicates";

export const Timestamp = z
  .string()
  // abort: a malformed timestamp is not also judged as a date ("2026-02-03 15:30:00Z" is a real
  // date in the wrong form) nor against the bounds of occurred_at: one detail, saying what is wrong.
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/, { error: "must be ISO 8601 UTC with Z, e.g. 2026-02-03T15:30:00Z", abort: true })
  .refine(isCalendarTimestamp, { error: (issue) => calendarProblem(String(issue.input)) })
  .openapi({ example: "2026-02-03T15:30:00Z" });

/** Why a consent changed, on a consent-log entry the customer did not make (migrations 0012, 0015); absent on the customer's own changes. */
export const ConsentReason = z.enum(["retention", "erasure"]).optional().openapi({
  description:
    "Present only when the change was not the customer's own. `retention`: a cross-merchant consent lapsed with the customer's preferences, removed (an opt-out: reduced) by retention 18 months after last use. `erasure`: the customer's data was purged at the end of a deletion's grace period, so a cross-merchant consent reads as not given (`revoked`) and an opt-out as the default, personalization on (`granted`). Absent: the customer's own change (PUT /v1/personalize/preferences).",
});

// IANA names: Europe/Amsterdam, America/Argentina/Buenos_Aires, Etc/GMT+5, EST5EDT, UTC.
const IANA_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+){0,2}$/;

export const Timezone = z
  .string()
  .min(1)
  .max(64)
  // A query string reads an unencoded + as a space, so ?timezone=Etc/GMT+5 arrives as "Etc/GMT 5":
  // no IANA name has a space, and the 400 says what to send instead of only "not a name".
  .regex(IANA_NAME, {
    error: (issue) =>
      String(issue.input).includes(" ")
        ? "must be an IANA time zone name; it has a space, which is how a query string reads an unencoded +: send + as %2B (Etc/GMT%2B5)"
        : "must be an IANA time zone name",
    abort: true, // a malformed name is not also looked up: one detail, not two
  })
  .openapi({ example: "Europe/Amsterdam" });

export const Tier = z.enum(["starter", "growth", "scale"]);
export type Tier = z.infer<typeof Tier>;

/** Accepted on every merchant route: the key may come in the query (compatibility). */
export const ApiKeyQuery = z.string().max(256).optional().openapi({ description: "API key (headers preferred)" });

/** The query of a route that takes no parameters (admin): any one is a typo, rejected with 400. */
export const NoQuery = z.strictObject({});

/**
 * The query of a keyless route (`/health`, `/v1/openapi.json`, `/docs`): `api_key` is accepted and
 * ignored, since API.md §1 lets a client pass its key that way and a client or monitoring probe that
 * appends it to every URL must not see its health check fail; any other parameter is still a 400.
 * (Admin routes keep rejecting it: they take the admin token, and a merchant key there is a mistake.)
 */
export const KeylessQuery = z.strictObject({
  api_key: z.string().max(256).optional().openapi({ description: "Ignored: this route takes no key (accepted so that a client adding api_key to every URL is not refused)" }),
});

/** A page size in a query string (text): a whole number from 1 to `max`. */
export const pageLimit = (items: string, max: number, defaultSize: number) =>
  z
    .string()
    .regex(/^\d{1,3}$/, `must be a whole number from 1 to ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(1).max(max))
    .openapi({ type: "integer", minimum: 1, maximum: max, description: `${items} per page, 1–${max} (default ${defaultSize})`, example: defaultSize });

/** The query of a merchant route that takes only what every merchant route accepts (its body names the rest). */
export const MerchantQuery = z.strictObject({ merchant_id: MerchantId.optional(), api_key: ApiKeyQuery });

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "VALIDATION_ERROR" }),
      message: z.string(),
      request_id: z.string(),
      documentation_url: z.string(),
      details: z.array(z.object({ path: z.string(), message: z.string() })).optional().openapi({ description: "Validation errors only" }),
    }),
  })
  .openapi("Error", {
    example: {
      error: {
        code: "VALIDATION_ERROR",
        message: "customer_id: Required",
        request_id: "req_abc123",
        documentation_url: "https://docs.tap2.com/errors#VALIDATION_ERROR",
        details: [{ path: "customer_id", message: "Required" }],
      },
    },
  });

/** The standard error responses, for route declarations. */
export function errorResponses(...statuses: number[]) {
  const descriptions: Record<number, string> = {
    400: "Invalid request (VALIDATION_ERROR, INVALID_JSON)",
    401: "Missing or invalid credentials",
    403: "Forbidden (MERCHANT_MISMATCH, KEY_NOT_ALLOWED, ORIGIN_NOT_ALLOWED)",
    404: "Not found",
    409: "Conflict",
    412: "Precondition failed (If-Match names a version that is no longer current)",
    413: "Payload too large",
    415: "Unsupported media type",
    429: "Rate limited",
    500: "Internal error",
    503: "A dependency is unavailable; retry",
  };
  const out: Record<number, { description: string; content: { "application/json": { schema: typeof ErrorBody } } }> = {};
  for (const s of statuses) out[s] = { description: descriptions[s] ?? "Error", content: { "application/json": { schema: ErrorBody } } };
  return out;
}

/** Error responses every authenticated merchant route can answer. */
export const MERCHANT_ERRORS = [400, 401, 403, 429, 500, 503] as const;

/** Error responses every admin route can answer. */
export const ADMIN_ERRORS = [400, 401, 404, 500, 503] as const;

/** A JSON response of a route declaration. */
export const jsonResponse = <T,>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });
