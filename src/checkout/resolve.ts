import type { Context } from "hono";
import { customerRef } from "../crypto/pseudonym";
import type { AppEnv } from "../env";
import { ApiError, validationError } from "../errors";
import { logField, logRequestError } from "../middleware/logger";
import type { ExplicitContext } from "../personalization/context";
import type { DeviceType } from "../schemas/common";
import { withTimeout } from "../storage/timeout";
import { sessionIdOf, verifyClientSecret } from "./session";

/** What a checkout session fixes about the basket; absent fields come from the request. */
export interface SessionBasket {
  amount?: number;
  currency?: string;
  country?: string;
  device_type?: DeviceType;
}

export type CheckoutCustomer =
  | { kind: "customer"; customerRef: string; basket: SessionBasket; sessionId: string | null }
  | { kind: "guest" }
  /** A client_secret whose session could not be read (KV failed or was slow): answered `degraded`. */
  | { kind: "unverified" };

/** The query fields this decision reads (validated with checkoutCustomerQueryFields). */
export interface CheckoutCustomerQuery {
  customer_id?: string | undefined;
  client_secret?: string | undefined;
}

/**
 * Who a /methods or /offers answer is for (API.md §7), from the key type and the query:
 *
 * | key         | customer_id | client_secret | answer                                             |
 * | ----------- | ----------- | ------------- | -------------------------------------------------- |
 * | publishable | given       | any           | 403 KEY_NOT_ALLOWED (a public key never names one) |
 * | any         | –           | valid         | the session's customer and basket                  |
 * | any         | –           | invalid       | 401 INVALID_CLIENT_SECRET (one answer for unknown, expired, garbled, other merchant's) |
 * | secret      | given       | given         | 400 VALIDATION_ERROR (one or the other)            |
 * | secret      | given       | –             | that customer, empty basket                        |
 * | secret      | –           | –             | 400 VALIDATION_ERROR, customer_id Required         |
 * | publishable | –           | –             | guest                                              |
 *
 * How /methods and /offers call it (their query schema spreads `checkoutCustomerQueryFields` from
 * src/schemas/checkout.ts, which makes customer_id optional and adds client_secret):
 *
 *   const who = await resolveCheckoutCustomer(c, query);
 *   const explicit = explicitContext(query, who);
 *   // guest: no profile read, the merchant's default order with fallback_reason "guest", arm null,
 *   // customer_ref null in the decision record; customer: customerRef as before.
 *
 * The session is read once per request (one KV get); nothing is cached in memory, so an expired
 * session stops working at its `expires_at`.
 */
export async function resolveCheckoutCustomer(c: Context<AppEnv>, query: CheckoutCustomerQuery, nowMs = Date.now()): Promise<CheckoutCustomer> {
  const keyType = c.get("apiKey").type;
  const merchantId = c.get("merchant").merchant_id;

  // A publishable key naming a customer never gets here: merchantAuthorization refuses it (403).
  if (query.client_secret !== undefined) {
    if (query.customer_id !== undefined) {
      throw validationError([{ path: "client_secret", message: "give either customer_id or client_secret, not both" }]);
    }
    let session;
    try {
      session = await withTimeout(verifyClientSecret(c.env.CACHE, query.client_secret, merchantId, nowMs), "checkout session read");
    } catch (err) {
      // A checkout never fails because personalization did (§2): without the session store the
      // customer is unknown, so the answer is the merchant's default order, `degraded`.
      logRequestError(c, "checkout session read failed; answering degraded", err);
      logField(c, "degraded", true);
      return { kind: "unverified" };
    }
    if (!session) throw new ApiError("INVALID_CLIENT_SECRET", "The client secret is unknown, expired or malformed");
    const sessionId = sessionIdOf(query.client_secret);
    logField(c, "checkout_session", sessionId);
    return { kind: "customer", customerRef: session.customer_ref, basket: basketOf(session), sessionId };
  }
  if (query.customer_id !== undefined) {
    return { kind: "customer", customerRef: await customerRef(c.env.PII_KEY, query.customer_id), basket: {}, sessionId: null };
  }
  if (keyType === "publishable") {
    logField(c, "guest", true);
    return { kind: "guest" };
  }
  throw validationError([{ path: "customer_id", message: "Required" }]);
}

function basketOf(s: { amount: number | null; currency: string | null; country: string | null; device_type: DeviceType | null }): SessionBasket {
  const basket: SessionBasket = {};
  if (s.amount !== null) basket.amount = s.amount;
  if (s.currency !== null) basket.currency = s.currency;
  if (s.country !== null) basket.country = s.country;
  if (s.device_type !== null) basket.device_type = s.device_type;
  return basket;
}

type ContextQuery = { device_type?: DeviceType | undefined; country?: string | undefined; amount?: number | undefined; currency?: string | undefined; timezone?: string | undefined };

/**
 * The explicit context of a request (API.md §7). With a checkout session the session supplies the
 * basket — amount, currency, and country when it set one — and a query value that contradicts it is
 * 400 (a page cannot re-price its own basket, which would change availability, offers and what
 * analytics records); a value equal to the session's is accepted, so a page may repeat it. The rest
 * comes from explicit query parameters, then the request's own signals (User-Agent, CF-IPCountry,
 * request.cf); the session's device_type only fills in when neither says anything.
 */
export function explicitContext(query: ContextQuery, who: CheckoutCustomer): ExplicitContext {
  const basket: SessionBasket = who.kind === "customer" ? who.basket : {};
  if (who.kind === "customer" && who.sessionId !== null) {
    const issues: { path: string; message: string }[] = [];
    for (const field of ["amount", "currency"] as const) {
      if (query[field] === undefined || query[field] === basket[field]) continue;
      issues.push({
        path: field,
        message: basket[field] === undefined ? `The basket comes from the checkout session, which has no ${field}: set it when creating the session` : `Does not match the checkout session's ${field}`,
      });
    }
    if (query.country !== undefined && basket.country !== undefined && query.country !== basket.country) {
      issues.push({ path: "country", message: "Does not match the checkout session's country" });
    }
    if (issues.length > 0) throw validationError(issues);
  }
  return {
    device_type: query.device_type,
    fallback_device_type: basket.device_type,
    country: basket.country ?? query.country,
    amount: basket.amount ?? query.amount,
    currency: basket.currency ?? query.currency,
    timezone: query.timezone,
  };
}
