import { z } from "@hono/zod-openapi";
import { isKnownTimeZone } from "../personalization/context";
import { checkoutCustomerQueryFields } from "./checkout";
import { AmountQuery, ApiKeyQuery, Country, Currency, CustomerId, DeviceType, DUPLICATES_MESSAGE, hasDuplicates, MerchantId, MethodId, OfferId, Timestamp, Timezone, ConsentReason } from "./common";

const KnownTimezone = Timezone.refine(isKnownTimeZone, "is not a known IANA time zone");

/** Query of GET /v1/personalize/methods and /offers: the customer and optional explicit context. */
export const PersonalizeQuery = z
  .strictObject({
    ...checkoutCustomerQueryFields,
    merchant_id: MerchantId.optional(),
    device_type: DeviceType.optional(),
    country: Country.optional(),
    amount: AmountQuery.optional(),
    currency: Currency.optional(),
    timezone: KnownTimezone.optional(),
    api_key: ApiKeyQuery,
  })
  .openapi("PersonalizeQuery");
export type PersonalizeQuery = z.infer<typeof PersonalizeQuery>;

export const FallbackReason = z
  .enum(["no_history", "personalization_disabled", "holdout", "customer_deleted", "guest", "degraded"])
  .openapi({ description: "Why the order is not personal (present only when personalized is false)" });

export const ResolvedContextView = z
  .object({
    device_type: DeviceType.nullable(),
    country: Country.nullable(),
    amount: z.number().int().nullable(),
    currency: Currency.nullable(),
    timezone: z.string(),
    time_of_day: z.enum(["night", "morning", "afternoon", "evening"]),
    day_of_week: z.number().int().min(0).max(6).openapi({ description: "0 = Sunday … 6 = Saturday, local time" }),
  })
  .openapi("ResolvedContext", {
    example: { device_type: "mobile", country: "US", amount: 9900, currency: "USD", timezone: "America/New_York", time_of_day: "evening", day_of_week: 2 },
  });

export const RankedMethodView = z
  .object({
    method_id: MethodId,
    confidence: z.number().min(0).max(1).openapi({ description: "Calibrated probability that the customer pays with this method now" }),
    score: z.number().openapi({ description: "Log-scale utility (100 = a uniform pick; +10 = e times as likely)" }),
  })
  .openapi("RankedMethod");

export const MethodsResponse = z
  .object({
    methods: z.array(RankedMethodView),
    personalized: z.boolean(),
    fallback_reason: FallbackReason.optional(),
    decision_id: z.string().openapi({ example: "dec_AQUBojxWBnPhGtxyXAKDO1KA_3WG9H-ZXMEJAAEKBwgOEBECBAUcHQ.uisb-uWZdejkqdfFs-nmTQ" }),
    context: ResolvedContextView,
  })
  .openapi("MethodsResponse", {
    example: {
      methods: [{ method_id: "apple_pay", confidence: 0.62, score: 142.5 }, { method_id: "visa", confidence: 0.21, score: 40 }],
      personalized: true,
      decision_id: "dec_…",
      context: { device_type: "mobile", country: "US", amount: null, currency: null, timezone: "America/New_York", time_of_day: "evening", day_of_week: 2 },
    },
  });

export const OfferView = z
  .object({
    offer_id: OfferId,
    method_id: MethodId,
    title: z.string(),
    description: z.string(),
    discount_type: z.enum(["percent", "fixed"]),
    discount_value: z.number(),
    relevance: z.number().min(0).max(1).openapi({ description: "Probability that this customer pays with the offer's method" }),
  })
  .openapi("RankedOffer");

export const OffersResponse = z
  .object({
    offers: z.array(OfferView),
    personalized: z.boolean(),
    fallback_reason: FallbackReason.or(z.literal("offers_disabled")).optional(),
  })
  .openapi("OffersResponse", {
    example: {
      offers: [{ offer_id: "applepay_5off", method_id: "apple_pay", title: "5% back with Apple Pay", description: "…", discount_type: "percent", discount_value: 5, relevance: 0.41 }],
      personalized: true,
    },
  });

export const CustomerQuery = z
  .strictObject({ customer_id: CustomerId, merchant_id: MerchantId.optional(), api_key: ApiKeyQuery })
  .openapi("CustomerQuery");

const MethodList = z
  .array(MethodId)
  .max(50)
  .refine((list) => !hasDuplicates(list), DUPLICATES_MESSAGE);

export const PreferencesPut = z
  .strictObject({
    customer_id: CustomerId,
    merchant_id: MerchantId.optional(),
    default_method: MethodId.nullable().optional(),
    favorite_methods: MethodList.optional(),
    excluded_methods: MethodList.optional(),
    personalization_enabled: z.boolean().optional(),
    cross_merchant_consent: z.boolean().optional(),
  })
  .openapi("PreferencesUpdate", {
    example: { customer_id: "cus_123", default_method: "apple_pay", favorite_methods: ["apple_pay", "visa"], excluded_methods: ["klarna"], cross_merchant_consent: true },
  });
export type PreferencesPut = z.infer<typeof PreferencesPut>;

export const PreferencesView = z
  .object({
    customer_id: CustomerId,
    merchant_id: MerchantId,
    default_method: MethodId.nullable(),
    favorite_methods: z.array(MethodId),
    excluded_methods: z.array(MethodId),
    personalization_enabled: z.boolean(),
    cross_merchant_consent: z.boolean(),
    created_at: Timestamp.nullable(),
    updated_at: Timestamp.nullable(),
    last_used_at: Timestamp.nullable(),
  })
  .openapi("Preferences", { example: { customer_id: "cus_123", merchant_id: "m_demo", default_method: "apple_pay", favorite_methods: ["apple_pay", "visa"], excluded_methods: ["klarna"], personalization_enabled: true, cross_merchant_consent: true, created_at: "2026-01-12T09:14:00.000Z", updated_at: "2026-02-03T15:30:00.000Z", last_used_at: "2026-02-01T18:02:11.000Z" } });

export const PreferencesUpdated = z
  .object({ updated: z.literal(true), preferences: PreferencesView })
  .openapi("PreferencesUpdated", { example: { updated: true, preferences: { customer_id: "cus_123", merchant_id: "m_demo", default_method: "apple_pay", favorite_methods: ["apple_pay", "visa"], excluded_methods: ["klarna"], personalization_enabled: true, cross_merchant_consent: true, created_at: "2026-01-12T09:14:00.000Z", updated_at: "2026-02-03T15:30:00.000Z", last_used_at: "2026-02-01T18:02:11.000Z" } } });

export const ConsentResponse = z
  .object({
    entries: z.array(
      z.object({
        consent_type: z.enum(["personalization", "cross_merchant"]),
        action: z.enum(["granted", "revoked"]),
        merchant_id: MerchantId,
        timestamp: Timestamp,
        reason: ConsentReason,
      }),
    ),
    truncated: z.boolean().openapi({ description: "true when older entries than these exist (the customer export has them all)" }),
  })
  .openapi("ConsentLog", {
    example: { entries: [{ consent_type: "cross_merchant", action: "granted", merchant_id: "m_demo", timestamp: "2026-02-03T15:30:00.000Z" }], truncated: false },
  });
