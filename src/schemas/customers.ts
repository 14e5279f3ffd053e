import { z } from "@hono/zod-openapi";
import { ApiKeyQuery, Country, Currency, CustomerId, MerchantId, MethodId, OfferId, Timestamp, ConsentReason } from "./common";

/** Customer data rights (API.md §3). */
export const CustomerPath = z.strictObject({
  customer_id: CustomerId.openapi({ param: { name: "customer_id", in: "path" }, example: "cus_123" }),
});

export const CustomerQuery = z.strictObject({
  merchant_id: MerchantId.optional(),
  api_key: ApiKeyQuery,
});

export const DeletionAccepted = z
  .object({
    customer_id: CustomerId,
    status: z.literal("pending_deletion"),
    purge_after: Timestamp.openapi({ description: "When the scheduled job may erase the data (request + 30 days); restore is possible until then" }),
  })
  .openapi("DeletionAccepted", { example: { customer_id: "cus_123", status: "pending_deletion", purge_after: "2026-03-05T15:30:00.000Z" } });

export const CustomerRestored = z
  .object({ customer_id: CustomerId, status: z.literal("active") })
  .openapi("CustomerRestored", { example: { customer_id: "cus_123", status: "active" } });

const ExportedPreferences = z
  .object({
    default_method: MethodId.nullable(),
    favorite_methods: z.array(MethodId),
    excluded_methods: z.array(MethodId),
    personalization_enabled: z.boolean(),
    cross_merchant_consent: z.boolean(),
    created_at: Timestamp,
    updated_at: Timestamp,
    last_used_at: Timestamp.nullable(),
  })
  .openapi("ExportedPreferences");

const ExportedUsageEvent = z
  .object({
    event_id: z.string(),
    method_id: MethodId,
    amount: z.number().int().nullable(),
    currency: Currency.nullable(),
    device_type: z.string().nullable(),
    location_country: Country.nullable(),
    decision_id: z.string().nullable(),
    offer_id: z.string().nullable(),
    occurred_at: Timestamp,
    received_at: Timestamp,
  })
  .openapi("ExportedUsageEvent");

export const ExportedUsageSummary = z
  .object({
    bucket: z.string().openapi({ description: "'*' overall, or a context bucket such as 'device:mobile', 'amount:2', 'country:NL'" }),
    method_id: MethodId,
    uses: z.number().int(),
    last_used_at: Timestamp,
  })
  .openapi("ExportedUsageSummary");

export const ExportedConsent = z
  .object({
    consent_type: z.enum(["personalization", "cross_merchant"]),
    action: z.enum(["granted", "revoked"]),
    timestamp: Timestamp,
    reason: ConsentReason,
  })
  .openapi("ExportedConsent");

const Arm = z.enum(["treatment", "holdout"]).nullable().openapi({ description: "The experiment arm the customer was in; null: the merchant runs no holdout" });
const DecisionKey = z.string().openapi({ description: "Identifies one /methods answer: the last part of its decision_id (after the final '.')", example: "q3Vf0b9Xk2LmN8pR4tYw1A" });

export const ExportedDecision = z
  .object({
    decision_key: DecisionKey,
    decided_at: Timestamp,
    arm: Arm,
    personalized: z.boolean(),
    fallback_reason: z.string().nullable().openapi({ description: "Why the order was not personal (null when it was)" }),
    ranked: z.array(MethodId).openapi({ description: "The methods in the order the answer gave them" }),
    device_type: z.string().nullable(),
    country: z.string().nullable(),
    currency: z.string().nullable(),
    cache: z.enum(["hit", "miss"]).nullable().openapi({ description: "Whether the customer's profile came from the cache" }),
  })
  .openapi("ExportedDecision", {
    example: {
      decision_key: "q3Vf0b9Xk2LmN8pR4tYw1A", decided_at: "2026-02-03T15:29:12.000Z", arm: "treatment", personalized: true, fallback_reason: null,
      ranked: ["apple_pay", "visa", "paypal"], device_type: "mobile", country: "US", currency: "USD", cache: "hit",
    },
  });

export const ExportedConversion = z
  .object({
    decision_key: DecisionKey,
    event_id: z.string().openapi({ description: "The usage event (payment) that converted the decision" }),
    arm: Arm,
    fallback_reason: z.string().nullable(),
    method_id: MethodId,
    rank: z.number().int().openapi({ description: "1-based rank of the paid method in the decision; 0: it was not in the list" }),
    amount: z.number().int().nullable(),
    currency: Currency.nullable(),
    decided_at: Timestamp,
    occurred_at: Timestamp,
    ttp_bin: z.number().int().openapi({ description: "Time from decision to payment, as a log-scale bin: 0 ≤ 1 s, bin b ≥ 1 covers [1000·1.01^(b−1), 1000·1.01^b) ms" }),
  })
  .openapi("ExportedConversion", {
    example: {
      decision_key: "q3Vf0b9Xk2LmN8pR4tYw1A", event_id: "order_1001", arm: "treatment", fallback_reason: null, method_id: "apple_pay", rank: 1,
      amount: 4999, currency: "USD", decided_at: "2026-02-03T15:29:12.000Z", occurred_at: "2026-02-03T15:30:00.000Z", ttp_bin: 390,
    },
  });

export const ExportedOfferImpression = z
  .object({
    impression_id: z.string().openapi({ description: "Identifies one /offers answer; the offers it showed share it" }),
    offer_id: OfferId,
    shown_at: Timestamp,
  })
  .openapi("ExportedOfferImpression", { example: { impression_id: "imp_7fQ2mZ9cK1xB", offer_id: "applepay_5off", shown_at: "2026-02-03T15:29:12.000Z" } });

const ExportedAnalytics = z
  .object({
    decisions: z.array(ExportedDecision).openapi({ description: "/methods answers given for the customer, oldest first (kept 90 days)" }),
    conversions: z.array(ExportedConversion).openapi({ description: "Payments attributed to one of those answers, oldest first (kept 90 days)" }),
    offer_impressions: z.array(ExportedOfferImpression).openapi({ description: "Offers shown to the customer, one row per offer, oldest first (kept 90 days)" }),
  })
  .openapi("ExportedAnalytics");

export const ExportedDeadLetter = z
  .object({
    queue: z.enum(["feedback", "analytics"]).openapi({ description: "The queue the message was on" }),
    received_at: Timestamp,
    truncated: z.boolean().openapi({ description: "true: body is cut at its size cap (or was not JSON), not the whole message" }),
    body: z.string().openapi({ description: "The message as JSON text; where it held the customer's pseudonym (customer_ref) it shows your customer_id" }),
  })
  .openapi("ExportedUndeliveredMessage", {
    example: {
      queue: "feedback", received_at: "2026-02-03T15:35:00.000Z", truncated: false,
      body: '{"v":1,"merchant_id":"m_demo","customer_ref":"cus_123","event_id":"order_1001","method_id":"apple_pay","amount":4999,"currency":"USD","occurred_at":"2026-02-03T15:30:00.000Z"}',
    },
  });

export const CustomerExport = z
  .object({
    customer_id: CustomerId,
    merchant_id: MerchantId,
    exported_at: Timestamp,
    status: z.enum(["active", "pending_deletion", "purged"]).openapi({
      description: "active: no erasure requested (or restored); pending_deletion: within the grace period; purged: erased, only the consent log is kept",
    }),
    purge_after: Timestamp.nullable(),
    preferences: ExportedPreferences.nullable().openapi({ description: "null when none are stored" }),
    usage_events: z.array(ExportedUsageEvent).openapi({ description: "Payments reported through feedback (kept 90 days), oldest first" }),
    usage_summary: z.array(ExportedUsageSummary).openapi({ description: "Per-method counts derived from usage events, which scoring reads" }),
    consent_log: z.array(ExportedConsent).openapi({ description: "Consent changes, oldest first (kept 3 years)" }),
    analytics: ExportedAnalytics.openapi({ description: "The raw experiment facts recorded about the customer (the merchant's reports only hold counts)" }),
    undelivered_messages: z.array(ExportedDeadLetter).openapi({
      description: "Feedback and analytics messages about the customer that could not be written (dead letters), oldest first, until ops re-drive (then they show above) or discard them",
    }),
  })
  .openapi("CustomerExport", {
    example: {
      customer_id: "cus_123",
      merchant_id: "m_demo",
      exported_at: "2026-02-03T15:30:00.000Z",
      status: "active",
      purge_after: null,
      preferences: null,
      usage_events: [],
      usage_summary: [],
      consent_log: [],
      analytics: { decisions: [], conversions: [], offer_impressions: [] },
      undelivered_messages: [],
    },
  });

/**
 * The two customer ids a URL path cannot carry (URL parsing removes the dot segments `.` and `..`),
 * refused as new ids since they were found (src/schemas/common.ts) but possibly stored before: the
 * admin API exports, erases and restores such a customer with the id in the body
 * (src/routes/adminCustomers.ts). Any other id goes through /v1/personalize/customers/{customer_id}.
 */
export const LegacyDotCustomerId = z
  .enum([".", ".."], { error: "must be . or ..: the admin routes take only the two ids a path cannot carry; any other id is exported, erased and restored through /v1/personalize/customers/{customer_id}" })
  .openapi({ description: "`.` or `..`: an id stored before these were refused, which no URL path can name", example: ".." });

export const LegacyCustomerBody = z.strictObject({ customer_id: LegacyDotCustomerId }).openapi("LegacyCustomerBody", { example: { customer_id: ".." } });

export const LegacyDeletionAccepted = DeletionAccepted.extend({ customer_id: LegacyDotCustomerId }).openapi("LegacyDeletionAccepted", {
  example: { customer_id: "..", status: "pending_deletion", purge_after: "2026-03-05T15:30:00.000Z" },
});

export const LegacyCustomerRestored = CustomerRestored.extend({ customer_id: LegacyDotCustomerId }).openapi("LegacyCustomerRestored", { example: { customer_id: "..", status: "active" } });

export const LegacyCustomerExport = CustomerExport.extend({ customer_id: LegacyDotCustomerId }).openapi("LegacyCustomerExport", {
  example: {
    customer_id: "..",
    merchant_id: "m_demo",
    exported_at: "2026-02-03T15:30:00.000Z",
    status: "active",
    purge_after: null,
    preferences: null,
    usage_events: [],
    usage_summary: [],
    consent_log: [],
    analytics: { decisions: [], conversions: [], offer_impressions: [] },
    undelivered_messages: [],
  },
});
