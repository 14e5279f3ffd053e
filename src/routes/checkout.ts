import { createRoute } from "@hono/zod-openapi";
import { lookupIdempotent, openCheckoutSession } from "../checkout/session";
import { customerRef } from "../crypto/pseudonym";
import type { App } from "../env";
import { ApiError } from "../errors";
import { errorText } from "../log";
import { contentFingerprint } from "../fingerprint";
import { logField } from "../middleware/logger";
import { CheckoutSession, CheckoutSessionCreate, CheckoutSessionCreateQuery, IdempotencyKeyHeader, SESSION_TTL } from "../schemas/checkout";
import { errorResponses, MERCHANT_ERRORS } from "../schemas/common";
import { merchantSecurity } from "../schemas/security";
import { readDeletion } from "../storage/deletions";
import { withTimeout } from "../storage/timeout";

const route = createRoute({
  method: "post",
  path: "/v1/checkout/sessions",
  operationId: "createCheckoutSession",
  tags: ["Checkout"],
  summary: "Open a short-lived checkout session whose client secret lets a checkout page read the customer's order (secret key)",
  security: merchantSecurity,
  request: {
    query: CheckoutSessionCreateQuery,
    headers: IdempotencyKeyHeader,
    body: { content: { "application/json": { schema: CheckoutSessionCreate } }, required: true },
  },
  responses: {
    201: { description: "The session; its client_secret is shown only here (and to a retry under the same Idempotency-Key)", content: { "application/json": { schema: CheckoutSession } } },
    ...errorResponses(...MERCHANT_ERRORS),
  },
});

export function registerCheckoutRoutes(app: App): void {
  app.openapi(route, async (c) => {
    const body = c.req.valid("json");
    const idempotencyKey = c.req.valid("header")["idempotency-key"];
    const merchant = c.get("merchant");
    const ref = await customerRef(c.env.PII_KEY, body.customer_id);
    logField(c, "customer_ref", ref);
    const nowMs = Date.now();
    const idem = idempotencyKey === undefined ? undefined : { signingKey: c.env.SIGNING_KEY, idempotencyKey, fingerprint: contentFingerprint(body) };
    // A customer whose deletion is pending gets a session that ends by purge_after: nothing of the
    // session (pseudonym, basket) outlives the purge (docs/checkout.md). D1 decides, so it is read,
    // beside a keyed request's KV reads (what a retry finds; reads only, nothing is written before
    // both are in). The answers are taken in the order they had when one waited for the other: a D1
    // failure is a 503 first, a replay included, then a KV read failure; so no outcome changes.
    const [deletionRead, lookupRead] = await Promise.allSettled([
      withTimeout(readDeletion(c.env.DB, merchant.merchant_id, ref), "deletion state read"),
      idem === undefined ? undefined : lookupIdempotent(c.env.CACHE, merchant.merchant_id, nowMs, idem),
    ]);
    if (deletionRead.status === "rejected") {
      logField(c, "d1_error", errorText(deletionRead.reason));
      throw new ApiError("UNAVAILABLE", "The checkout session cannot be opened right now; retry");
    }
    const deletion = deletionRead.value;
    const notAfterMs = deletion?.status === "pending" ? Date.parse(deletion.purge_after) : undefined;
    if (notAfterMs !== undefined) logField(c, "session_capped_by_deletion", true);
    let opened;
    try {
      if (lookupRead.status === "rejected") throw lookupRead.reason;
      opened = await openCheckoutSession(c.env.CACHE, {
        merchantId: merchant.merchant_id,
        customerRef: ref,
        amount: body.amount,
        currency: body.currency,
        country: body.country,
        deviceType: body.device_type,
        expiresInSeconds: body.expires_in ?? SESSION_TTL.default,
        nowMs,
        notAfterMs,
      }, idem, lookupRead.value);
    } catch (err) {
      // Without the KV write the page could not read the session: the backend must hear it and retry.
      logField(c, "kv_error", errorText(err));
      throw new ApiError("UNAVAILABLE", "The checkout session cannot be stored right now; retry");
    }
    logField(c, "checkout_session", opened.id);
    if (opened.replayed) {
      logField(c, "idempotent_replay", true);
      c.header("Idempotent-Replayed", "true");
    }
    const { session } = opened;
    return c.json(
      {
        id: opened.id,
        client_secret: opened.clientSecret,
        merchant_id: merchant.merchant_id,
        customer_id: body.customer_id,
        amount: session.amount,
        currency: session.currency,
        expires_at: session.expires_at,
      },
      201,
    );
  });
}
