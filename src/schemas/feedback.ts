import { z } from "@hono/zod-openapi";
import { recencyRef } from "../personalization/recency";
import { Amount, Country, Currency, CustomerId, DeviceType, headerText, MerchantId, MethodId, OfferId, Text, Timestamp } from "./common";

/** An event may be reported up to 5 minutes early (clock skew) and up to 90 days late (retention). */
export const MAX_FUTURE_MS = 5 * 60 * 1000;
export const MAX_AGE_MS = 90 * 24 * 3600 * 1000;
export const MAX_BATCH_EVENTS = 100;

/**
 * The client's idempotency key: 1–128 characters, any (API.md §2) — merchants' order ids carry
 * `#`, `/` and spaces. It is only ever a bound SQL parameter and a JSON string, never a key format.
 * Characters, so not a lone UTF-16 surrogate (Text's rule): D1 reads one back as U+FFFD, so two
 * different ids would export alike and, where D1 writes it so, be stored as one event.
 */
export const EventId = Text.min(1).max(128).openapi({ example: "order #1001" });

/** Bounds checked against the clock at validation time (the edge, not the pure core). */
const OccurredAt = Timestamp.superRefine((value, ctx) => {
  const t = Date.parse(value);
  const now = Date.now();
  if (t > now + MAX_FUTURE_MS) ctx.addIssue({ code: "custom", message: "must not be more than 5 minutes in the future" });
  else if (t < now - MAX_AGE_MS) ctx.addIssue({ code: "custom", message: "must not be older than 90 days" });
});

export const FeedbackEvent = z
  .strictObject({
    customer_id: CustomerId,
    merchant_id: MerchantId.optional(),
    method_id: MethodId.openapi({ description: "The method the customer paid with; must be enabled for the merchant" }),
    amount: Amount.optional(),
    currency: Currency.optional(),
    device_type: DeviceType.optional(),
    location_country: Country.optional(),
    event_id: EventId.optional().openapi({ description: "Idempotency key: the same (merchant, event_id) is stored once" }),
    decision_id: z.string().min(1).max(4096).optional().openapi({ description: "The decision_id of the /methods answer this payment followed", example: "dec_…" }),
    offer_id: OfferId.optional(),
    occurred_at: OccurredAt.optional().openapi({ description: "When the customer paid; at most 5 min ahead, at most 90 days old; default: now" }),
  })
  .openapi("FeedbackEvent", {
    example: { customer_id: "cus_123", method_id: "apple_pay", amount: 4999, currency: "USD", device_type: "mobile", event_id: "order_1001" },
  });
export type FeedbackEvent = z.infer<typeof FeedbackEvent>;

export const FeedbackBatch = z
  // merchant_id here as on every merchant route's body (API.md §1); authentication holds it to the key's.
  .strictObject({ merchant_id: MerchantId.optional(), events: z.array(FeedbackEvent).min(1).max(MAX_BATCH_EVENTS) })
  .openapi("FeedbackBatch", {
    example: {
      events: [
        { customer_id: "cus_123", method_id: "apple_pay", amount: 4999, currency: "USD", event_id: "order_1001" },
        { customer_id: "cus_456", method_id: "klarna", amount: 12900, currency: "EUR", location_country: "NL", event_id: "order_1002" },
      ],
    },
  });

export const FeedbackAccepted = z.object({
  accepted: z.number().int().min(1).openapi({ description: "Distinct events queued: an event_id repeated in the batch with the same content counts once", example: 2 }),
}).openapi("FeedbackAccepted", { example: { accepted: 2 } });

/** Hono hands validators lower-cased header names, so the key (and the documented name) is lower case. */
export const IdempotencyHeaders = z.object({
  "idempotency-key": headerText(EventId).optional().openapi({
    description: "Event id when the body has no event_id (single event); batch: derives one per event lacking it, from the key and the event as sent (a retried batch is stored once; other events under the same key are new events)",
  }),
});

/**
 * The queued message (version 1). Holds the pseudonym, never the customer id. `decision` carries the
 * verified claims of decision_id that conversion analytics needs later, so the consumer never has
 * to re-verify or re-read the decision.
 */
export const FeedbackMessage = z.object({
  v: z.literal(1),
  merchant_id: MerchantId,
  customer_ref: z.string().min(1).max(128),
  event_id: EventId,
  method_id: MethodId,
  amount: Amount.nullable(),
  currency: Currency.nullable(),
  device_type: DeviceType.nullable(),
  location_country: Country.nullable(),
  offer_id: OfferId.nullable(),
  // The recency weight of the event must be a finite number (an absurd date would be stored as NULL
  // and fail the whole D1 batch); the API bounds occurred_at far tighter, this guards the queue.
  occurred_at: Timestamp.refine((t) => Number.isFinite(recencyRef(Date.parse(t))), "is outside the range the model can weigh"),
  received_at: Timestamp,
  decision: z
    .object({
      decision_id: z.string().min(1).max(4096),
      arm: z.enum(["treatment", "holdout"]).nullable(),
      fallback_reason: z.string().nullable(),
      /** Rank (1-based) the decision gave the paid method; null when it was not in the list. */
      rank: z.number().int().min(1).nullable(),
      issued_at: Timestamp,
    })
    .nullable(),
});
export type FeedbackMessage = z.infer<typeof FeedbackMessage>;
