import createClient, { type Client } from "openapi-fetch";
import type { Readable } from "openapi-typescript-helpers";
import { Tap2Error } from "./errors";
import { retryingFetch, transportError } from "./retry";
import type { components, paths } from "./schema";

/** Every route of the worker's OpenAPI document (clients/openapi.json, generated into schema.d.ts). */
export type ApiPaths = paths;
/** Response bodies as openapi-fetch returns them (Readable: tuples read as arrays, write-only fields dropped). */
type Schemas = { [K in keyof components["schemas"]]: Readable<components["schemas"][K]> };
type Query<P extends keyof ApiPaths, M extends "get" | "post"> = ApiPaths[P] extends Record<M, { parameters: { query?: infer Q } }>
  ? Omit<NonNullable<Q>, "api_key">
  : never;

export type MethodsQuery = Query<"/v1/personalize/methods", "get">;
export type OffersQuery = Query<"/v1/personalize/offers", "get">;
export type AnalyticsSummaryQuery = Query<"/v1/analytics/summary", "get">;
export type AnalyticsTimeseriesQuery = Query<"/v1/analytics/timeseries", "get">;
export type MethodsResponse = Schemas["MethodsResponse"];
export type OffersResponse = Schemas["OffersResponse"];
export type FeedbackEvent = Schemas["FeedbackEvent"];
export type Preferences = Schemas["Preferences"];
export type PreferencesUpdate = Schemas["PreferencesUpdate"];
export type PreferencesUpdated = Schemas["PreferencesUpdated"];
export type ConsentLog = Schemas["ConsentLog"];
export type DeletionAccepted = Schemas["DeletionAccepted"];
export type CustomerRestored = Schemas["CustomerRestored"];
export type CustomerExport = Schemas["CustomerExport"];
export type CatalogMethod = Schemas["CatalogMethod"];
export type CheckoutSessionCreate = Schemas["CheckoutSessionCreate"];
export type CheckoutSession = Schemas["CheckoutSession"];
export type AnalyticsSummary = Schemas["AnalyticsSummary"];
export type AnalyticsTimeseries = Schemas["AnalyticsTimeseries"];

/**
 * The last argument of every wrapped method. `signal` cancels this one call: before it is sent,
 * while the answer is awaited, between retries or while the body is read; the call then throws
 * Tap2Error `ABORTED` (status 0, the signal's reason as `cause`). The client's own `timeoutMs`
 * still bounds each attempt.
 */
export interface RequestOptions {
  signal?: AbortSignal;
}

/** API.md §1: `merchant_id` may be omitted (it is the key's merchant); naming another one is a 403. */
export interface MerchantOption extends RequestOptions {
  merchantId?: string;
}

/** Your own Idempotency-Key (e.g. your order id), else one is generated; the same on every retry. */
export interface IdempotencyOption extends RequestOptions {
  idempotencyKey?: string;
}

export interface Tap2ClientOptions {
  /** A secret key `tp2_sk_…` (merchant backends) or a publishable key `tp2_pk_…` (methods and offers only). */
  apiKey: string;
  /** Default `https://api.tap2-personalize.com`; `http://localhost:8787` for `npm run dev`. */
  baseUrl?: string;
  /** Per attempt, in ms: connecting, sending, the headers and the whole body. Default 10 000. */
  timeoutMs?: number;
  /** Retries of a 429, or of a 503 to a request that is safe to resend (see retry.ts `mayRetry`). Default 2. */
  maxRetries?: number;
  /** A Retry-After (or backoff) longer than this is not waited out; the error is thrown. Default 30 000. */
  maxRetryDelayMs?: number;
  /** First backoff step when the server sends no Retry-After. Default 250. */
  retryBaseDelayMs?: number;
  fetch?: (request: Request) => Promise<Response>;
  /** For tests: how to wait between retries. */
  sleep?: (ms: number) => Promise<void>;
}

export const DEFAULT_BASE_URL = "https://api.tap2-personalize.com";

/** Typed client of the merchant-backend calls. Every failure throws {@link Tap2Error}. */
export class Tap2Client {
  /**
   * The underlying typed openapi-fetch client, for calls not wrapped here: key, retries, timeout and
   * `signal` included, and the same Tap2Error thrown for a failure without a whole answer (TIMEOUT,
   * NETWORK_ERROR, REDIRECT, ABORTED) or a 2xx that is not JSON; an error answer is returned as
   * `{ error, response }`, and a success is not shape-checked (docs/clients.md).
   */
  readonly raw: Client<ApiPaths>;
  private readonly timeoutMs: number;

  constructor(options: Tap2ClientOptions) {
    if (!options.apiKey) throw new TypeError("Tap2Client: apiKey is required");
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.raw = createClient<ApiPaths>({
      baseUrl: (options.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, ""),
      headers: { "X-API-Key": headerValue("X-API-Key", options.apiKey) },
      fetch: answerIsJson(retryingFetch({
        maxRetries: options.maxRetries ?? 2,
        timeoutMs: this.timeoutMs,
        baseDelayMs: options.retryBaseDelayMs ?? 250,
        maxRetryDelayMs: options.maxRetryDelayMs ?? 30_000,
        fetch: options.fetch ?? ((request) => globalThis.fetch(request)),
        sleep: options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
      })),
    });
  }

  /** The merchant's methods for a customer, best first (GET /v1/personalize/methods). */
  getMethods(query: MethodsQuery, options: RequestOptions = {}): Promise<MethodsResponse> {
    return this.call(() => this.raw.GET("/v1/personalize/methods", { params: { query }, signal: options.signal }), { methods: "array" });
  }

  /** Offers for a customer, ranked by expected value (GET /v1/personalize/offers). */
  getOffers(query: OffersQuery, options: RequestOptions = {}): Promise<OffersResponse> {
    return this.call(() => this.raw.GET("/v1/personalize/offers", { params: { query }, signal: options.signal }), { offers: "array" });
  }

  /**
   * Reports the method a customer paid with (POST /v1/personalize/feedback, 204). Without an
   * `event_id` one is generated, and the same one is sent on every retry, so the event is stored once.
   */
  async sendFeedback(event: FeedbackEvent, options: RequestOptions = {}): Promise<{ eventId: string }> {
    const eventId = event.event_id ?? newIdempotencyKey("evt");
    await this.call(() => this.raw.POST("/v1/personalize/feedback", { body: { ...event, event_id: eventId }, signal: options.signal }), null);
    return { eventId };
  }

  /**
   * Up to 100 events at once (202). Events without `event_id` get ids derived from the batch's
   * Idempotency-Key, generated here unless given, and reused on retries.
   */
  async sendFeedbackBatch(events: FeedbackEvent[], options: IdempotencyOption = {}): Promise<{ accepted: number; idempotencyKey: string }> {
    const idempotencyKey = headerValue("Idempotency-Key", options.idempotencyKey ?? newIdempotencyKey("batch"));
    const data = await this.call(
      () => this.raw.POST("/v1/personalize/feedback/batch", { body: { events }, headers: { "Idempotency-Key": idempotencyKey }, signal: options.signal }),
      { accepted: "number" },
    );
    return { accepted: data.accepted, idempotencyKey };
  }

  /** The customer's stored preferences, or the defaults (GET /v1/personalize/preferences). */
  getPreferences(customerId: string, options: MerchantOption = {}): Promise<Preferences> {
    const query = { customer_id: customerId, ...merchantQuery(options) };
    return this.call(() => this.raw.GET("/v1/personalize/preferences", { params: { query }, signal: options.signal }), {});
  }

  /** Changes the given fields; the others keep their values (PUT /v1/personalize/preferences). */
  putPreferences(update: PreferencesUpdate, options: RequestOptions = {}): Promise<PreferencesUpdated> {
    return this.call(() => this.raw.PUT("/v1/personalize/preferences", { body: update, signal: options.signal }), { preferences: "object" });
  }

  /** The customer's consent log, oldest first (GET /v1/personalize/consent). */
  getConsent(customerId: string, options: MerchantOption = {}): Promise<ConsentLog> {
    const query = { customer_id: customerId, ...merchantQuery(options) };
    return this.call(() => this.raw.GET("/v1/personalize/consent", { params: { query }, signal: options.signal }), { entries: "array" });
  }

  /**
   * Opens a checkout session; hand its `client_secret` to the checkout page (POST /v1/checkout/sessions).
   * An Idempotency-Key, generated here unless given, goes with every retry, so a retry answers the
   * same session instead of opening a second one.
   */
  async createCheckoutSession(session: CheckoutSessionCreate, options: IdempotencyOption = {}): Promise<CheckoutSession> {
    const idempotencyKey = headerValue("Idempotency-Key", options.idempotencyKey ?? newIdempotencyKey("cs"));
    return this.call(
      () => this.raw.POST("/v1/checkout/sessions", { body: session, headers: { "Idempotency-Key": idempotencyKey }, signal: options.signal }),
      { client_secret: "string" },
    );
  }

  /** Starts the customer's deletion; purged after the grace period (DELETE /v1/personalize/customers/{id}, 202). */
  deleteCustomer(customerId: string, options: MerchantOption = {}): Promise<DeletionAccepted> {
    return this.call(
      () => this.raw.DELETE("/v1/personalize/customers/{customer_id}", { params: { path: { customer_id: customerId }, query: merchantQuery(options) }, signal: options.signal }),
      {},
    );
  }

  /** Cancels a pending deletion within the grace period (404 after the purge). */
  restoreCustomer(customerId: string, options: MerchantOption = {}): Promise<CustomerRestored> {
    return this.call(
      () => this.raw.POST("/v1/personalize/customers/{customer_id}/restore", { params: { path: { customer_id: customerId }, query: merchantQuery(options) }, signal: options.signal }),
      {},
    );
  }

  /** Everything stored about the customer for this merchant (GET …/customers/{id}/export). */
  exportCustomer(customerId: string, options: MerchantOption = {}): Promise<CustomerExport> {
    return this.call(
      () => this.raw.GET("/v1/personalize/customers/{customer_id}/export", { params: { path: { customer_id: customerId }, query: merchantQuery(options) }, signal: options.signal }),
      {},
    );
  }

  /** Treatment vs holdout over a period (GET /v1/analytics/summary; secret key). */
  getAnalyticsSummary(query: AnalyticsSummaryQuery = {}, options: RequestOptions = {}): Promise<AnalyticsSummary> {
    return this.call(() => this.raw.GET("/v1/analytics/summary", { params: { query }, signal: options.signal }), {});
  }

  /** One metric per arm and hour or day, oldest first (GET /v1/analytics/timeseries; secret key). */
  getAnalyticsTimeseries(query: AnalyticsTimeseriesQuery, options: RequestOptions = {}): Promise<AnalyticsTimeseries> {
    return this.call(() => this.raw.GET("/v1/analytics/timeseries", { params: { query }, signal: options.signal }), { points: "array" });
  }

  /** The catalog of payment methods (GET /v1/payment-methods). */
  async getPaymentMethods(options: MerchantOption = {}): Promise<CatalogMethod[]> {
    const data = await this.call(() => this.raw.GET("/v1/payment-methods", { params: { query: merchantQuery(options) }, signal: options.signal }), { methods: "array" });
    return data.methods;
  }

  /**
   * One call: a transport failure or an error answer throws Tap2Error; so does a success whose JSON is
   * not the `shape` the route promises (a JSON object with these fields; `null`: no body promised).
   */
  private async call<T>(run: () => Promise<{ data?: T; error?: unknown; response: Response }>, shape: Shape | null): Promise<T> {
    let result: { data?: T; error?: unknown; response: Response };
    try {
      result = await run();
    } catch (err) {
      // A failure of the transport (the timeout, the caller's signal, the network) is already a
      // Tap2Error from retryingFetch; anything else (a base URL that is no URL) is NETWORK_ERROR.
      throw transportError(err, false, this.timeoutMs);
    }
    if (!result.response.ok) throw Tap2Error.fromResponse(result.response, result.error);
    if (shape !== null) {
      const problem = shapeProblem(result.data, shape);
      if (problem !== null) {
        throw new Tap2Error({ status: result.response.status, code: "INVALID_RESPONSE", message: `Unexpected answer: ${problem}`, requestId: result.response.headers.get("X-Request-Id") });
      }
    }
    return result.data as T;
  }
}

/**
 * What a success must be for the wrapped call to hand it back: a JSON object, with these fields of
 * these JSON types (the ones the client reads, or the list the answer is for). Other fields are not
 * checked, and fields the client does not know pass through. The Python and PHP clients check the same.
 */
type Shape = Record<string, "array" | "object" | "number" | "string">;

function jsonType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

function shapeProblem(data: unknown, shape: Shape): string | null {
  if (jsonType(data) !== "object") return "not a JSON object";
  for (const [field, type] of Object.entries(shape)) {
    if (jsonType((data as Record<string, unknown>)[field]) !== type) return `"${field}" is not ${type === "array" || type === "object" ? "an" : "a"} ${type}`;
  }
  return null;
}

/**
 * A success whose body is not JSON is an answer, not a network failure: INVALID_RESPONSE with its
 * status and request id (as the Python and PHP clients say), never NETWORK_ERROR with status 0.
 */
function answerIsJson(fetch: (request: Request) => Promise<Response>): (request: Request) => Promise<Response> {
  return async (request) => {
    const response = await fetch(request);
    if (!response.ok || response.status === 204) return response;
    const text = await response.text();
    if (text !== "") {
      try {
        JSON.parse(text);
      } catch (err) {
        throw new Tap2Error({ status: response.status, code: "INVALID_RESPONSE", message: "The answer is not JSON", requestId: response.headers.get("X-Request-Id"), cause: err });
      }
    }
    return new Response(text, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

/**
 * A header value the caller gave (the key, an Idempotency-Key), refused before anything is sent with
 * a TypeError (a bug in the calling code, not an API answer), in the Python and PHP clients' words:
 * a line break would start another header line; and HTTP carries only ASCII the same way in every
 * client (RFC 9110 §5.5: VCHAR, space, tab). fetch sends é as the one byte E9, which the API reads as
 * U+FFFD (so café and cafè would be one key), cannot send ключ at all, and fails a control character;
 * the Python and PHP clients sent each differently.
 */
function headerValue(name: string, value: string): string {
  if (/[\r\n\0]/.test(value)) throw new TypeError(`The ${name} header cannot hold a line break or NUL`);
  if (/[^\t\x20-\x7e]/.test(value)) throw new TypeError(`The ${name} header cannot hold a control character or a character outside ASCII`);
  return value;
}

function merchantQuery(options: MerchantOption): { merchant_id?: string } {
  return options.merchantId === undefined ? {} : { merchant_id: options.merchantId };
}

/** An idempotency key in the API's id charset ([A-Za-z0-9._:@-], at most 128). */
export function newIdempotencyKey(prefix: string): string {
  return `${prefix}_${crypto.randomUUID().replaceAll("-", "")}`;
}
