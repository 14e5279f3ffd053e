import { z } from "@hono/zod-openapi";
import { ApiKeyQuery, Country, Currency, CustomerId, MerchantId, MethodId, Timestamp } from "./common";

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

const ExportedUsageSummary = z
  .object({
    bucket: z.string().openapi({ description: "'*' overall, or a context bucket such as 'device:mobile', 'amount:2', 'country:NL'" }),
    method_id: MethodId,
    uses: z.number().int(),
    last_used_at: Timestamp,
  })
  .openapi("ExportedUsageSummary");

const ExportedConsent = z
  .object({
    consent_type: z.enum(["personalization", "cross_merchant"]),
    action: z.enum(["granted", "revoked"]),
    timestamp: Timestamp,
  })
  .openapi("ExportedConsent");

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
    },
  });
