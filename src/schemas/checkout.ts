import { z } from "@hono/zod-openapi";
import { Amount, Country, Currency, CustomerId, DeviceType, headerText, MerchantId, MerchantQuery, Timestamp } from "./common";

export const SESSION_TTL = { min: 60, max: 86_400, default: 1_800 } as const;

export const CheckoutSessionCreate = z
  .strictObject({
    customer_id: CustomerId,
    merchant_id: MerchantId.optional(),
    amount: Amount.optional(),
    currency: Currency.optional(),
    country: Country.optional(),
    device_type: DeviceType.optional(),
    expires_in: z
      .number()
      .int()
      .min(SESSION_TTL.min)
      .max(SESSION_TTL.max)
      .optional()
      .openapi({ description: "Seconds until the session expires (default 1800)", example: 1800 }),
  })
  .openapi("CheckoutSessionCreate", { example: { customer_id: "cus_123", amount: 9900, currency: "USD", country: "US" } });
export type CheckoutSessionCreate = z.infer<typeof CheckoutSessionCreate>;

export const CheckoutSessionCreateQuery = MerchantQuery;

export const IdempotencyKeyHeader = z.object({
  "idempotency-key": headerText(z.string().min(1).max(128))
    .optional()
    .openapi({
      description:
        "Makes the create safe to retry: the same request under the same key within 24 hours of the first answers the same session as it was (same id, client_secret and expires_at; header Idempotent-Replayed: true); after 24 hours, or with other content, the key opens another session",
      example: "order_1001_checkout",
    }),
});

export const CheckoutSession = z
  .object({
    id: z.string().openapi({ example: "cs_4f1c2a9be0d37a51c6e8b2d0" }),
    client_secret: z.string().openapi({ description: "Hand this to the checkout page; it reads the order with the publishable key" }),
    merchant_id: MerchantId,
    customer_id: CustomerId,
    amount: Amount.nullable(),
    currency: Currency.nullable(),
    expires_at: Timestamp.openapi({
      description: "When the session ends: now + expires_in, or sooner (at least 60 s) when the customer's deletion is pending, by its purge_after, so no session outlives the erasure",
    }),
  })
  .openapi("CheckoutSession", {
    example: {
      id: "cs_4f1c2a9be0d37a51c6e8b2d0",
      client_secret: "cs_4f1c2a9be0d37a51c6e8b2d0_secret_Xw…",
      merchant_id: "m_demo",
      customer_id: "cus_123",
      amount: 9900,
      currency: "USD",
      expires_at: "2026-02-03T16:00:00.000Z",
    },
  });

/**
 * The `client_secret` query parameter of GET /v1/personalize/methods and /offers. Deliberately any
 * string: a garbled secret must answer 401 INVALID_CLIENT_SECRET like an unknown one, not 400.
 */
export const ClientSecretQuery = z
  .string()
  .optional()
  .openapi({ description: "A checkout session's client secret (publishable keys; §7). The session supplies customer and basket." });

/**
 * Spread into the /methods and /offers query schema: customer_id becomes optional (a session or a
 * guest names no customer); resolveCheckoutCustomer enforces who needs what.
 */
export const checkoutCustomerQueryFields = {
  customer_id: CustomerId.optional(),
  client_secret: ClientSecretQuery,
};
