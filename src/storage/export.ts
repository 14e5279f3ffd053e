import type { z } from "@hono/zod-openapi";
import type * as schemas from "../schemas/customers";
import { type ConsentReason, withReason } from "./consent";
import type { DeletionState } from "./deletions";
import type { UsageEventRow } from "./events";
import { fromPreferenceRow, PREFERENCE_COLUMNS, type PreferenceRow, type StoredPreferences } from "./preferences";

/** A stored usage event as exported: every column but the internal ones (keys, model inputs). */
export type ExportedUsageEvent = Omit<UsageEventRow, "merchant_id" | "customer_ref" | "amount_band" | "recency_ref">;

// Row shapes of the export: the response schemas' own types (src/schemas/customers.ts), one source.
export type ExportedUsageSummary = z.infer<typeof schemas.ExportedUsageSummary>;
export type ExportedConsent = z.infer<typeof schemas.ExportedConsent>;
/** One /methods answer given for the customer (analytics_decisions), without its keys. */
export type ExportedDecision = z.infer<typeof schemas.ExportedDecision>;
/** A payment attributed to a decision (analytics_conversions), without its keys. */
export type ExportedConversion = z.infer<typeof schemas.ExportedConversion>;
/** An offer shown to the customer (analytics_offer_impressions), without its keys. */
export type ExportedOfferImpression = z.infer<typeof schemas.ExportedOfferImpression>;
/**
 * A feedback or analytics message about the customer that could not be written (dead_letters,
 * migration 0007), kept until ops re-drive or discard it. `body` holds the pseudonym, which the
 * route replaces with the merchant's own customer id.
 */
export type ExportedDeadLetter = z.infer<typeof schemas.ExportedDeadLetter>;

/** Everything stored about one customer at one merchant (API.md §3), read in one D1 batch. */
export interface CustomerData {
  deletion: DeletionState | null;
  preferences: StoredPreferences | null;
  usage_events: ExportedUsageEvent[];
  usage_summary: ExportedUsageSummary[];
  consent_log: ExportedConsent[];
  analytics: { decisions: ExportedDecision[]; conversions: ExportedConversion[]; offer_impressions: ExportedOfferImpression[] };
  undelivered_messages: ExportedDeadLetter[];
}

/**
 * Where each table holding `customer_ref` shows in the export (a path of the response body).
 * test/api/lifecycle.test.ts fails for a customer table that is in neither this list nor NOT_EXPORTED.
 */
export const EXPORTED_TABLES = {
  preferences: "preferences",
  usage_events: "usage_events",
  method_stats: "usage_summary",
  consent_log: "consent_log",
  customer_deletions: "purge_after",
  analytics_decisions: "analytics.decisions",
  analytics_conversions: "analytics.conversions",
  analytics_offer_impressions: "analytics.offer_impressions",
  dead_letters: "undelivered_messages",
} as const;

/** Customer tables left out of the export on purpose, and why. */
export const NOT_EXPORTED: Record<string, string> = {
  data_rights_audit: "the merchant's record of who requested a deletion, restore or export and when (key ids, request ids), not the customer's data",
};

interface DecisionRow extends Omit<ExportedDecision, "personalized" | "ranked"> {
  personalized: number;
  ranked: string;
}

export async function readCustomerData(db: D1Database, merchantId: string, customerRef: string): Promise<CustomerData> {
  const bind = (sql: string) => db.prepare(sql).bind(merchantId, customerRef);
  const [deletion, prefs, events, stats, consent, decisions, conversions, impressions, letters] = await db.batch<unknown>([
    bind("SELECT status, requested_at, purge_after, purged_at FROM customer_deletions WHERE merchant_id = ? AND customer_ref = ?"),
    bind(`SELECT ${PREFERENCE_COLUMNS} FROM preferences WHERE merchant_id = ? AND customer_ref = ?`),
    bind(
      `SELECT event_id, method_id, amount, currency, device_type, location_country, decision_id, offer_id, occurred_at, received_at
       FROM usage_events WHERE merchant_id = ? AND customer_ref = ? ORDER BY occurred_at, id`,
    ),
    bind("SELECT bucket, method_id, uses, last_used_at FROM method_stats WHERE merchant_id = ? AND customer_ref = ? ORDER BY bucket, method_id"),
    bind("SELECT consent_type, action, created_at AS timestamp, reason FROM consent_log WHERE merchant_id = ? AND customer_ref = ? ORDER BY id"),
    bind(
      `SELECT decision_key, decided_at, arm, personalized, fallback_reason, ranked, device_type, country, currency, cache
       FROM analytics_decisions WHERE merchant_id = ? AND customer_ref = ? ORDER BY decided_at, decision_key`,
    ),
    bind(
      `SELECT decision_key, event_id, arm, fallback_reason, method_id, rank, amount, currency, decided_at, occurred_at, ttp_bin
       FROM analytics_conversions WHERE merchant_id = ? AND customer_ref = ? ORDER BY occurred_at, decision_key`,
    ),
    bind(
      `SELECT impression_id, offer_id, shown_at FROM analytics_offer_impressions
       WHERE merchant_id = ? AND customer_ref = ? ORDER BY shown_at, impression_id, offer_id`,
    ),
    // Only letters that name this merchant: one whose body named none cannot be told to be this merchant's.
    bind("SELECT queue, received_at, truncated, body FROM dead_letters WHERE merchant_id = ? AND customer_ref = ? ORDER BY id"),
  ]);
  const prefRow = prefs!.results[0] as PreferenceRow | undefined;
  return {
    deletion: (deletion!.results[0] as DeletionState | undefined) ?? null,
    preferences: prefRow ? fromPreferenceRow(prefRow) : null,
    usage_events: events!.results as ExportedUsageEvent[],
    usage_summary: stats!.results as ExportedUsageSummary[],
    consent_log: (consent!.results as (Omit<ExportedConsent, "reason"> & { reason: ConsentReason | null })[]).map(withReason),
    analytics: {
      decisions: (decisions!.results as DecisionRow[]).map((d) => ({ ...d, personalized: d.personalized === 1, ranked: JSON.parse(d.ranked) as string[] })),
      conversions: conversions!.results as ExportedConversion[],
      offer_impressions: impressions!.results as ExportedOfferImpression[],
    },
    undelivered_messages: (letters!.results as (Omit<ExportedDeadLetter, "truncated"> & { truncated: number })[]).map((l) => ({ ...l, truncated: l.truncated === 1 })),
  };
}
