import type { DeletionState } from "./deletions";
import type { UsageEventRow } from "./events";
import { fromPreferenceRow, PREFERENCE_COLUMNS, type PreferenceRow, type StoredPreferences } from "./preferences";

/** A stored usage event as exported: every column but the internal ones (keys, model inputs). */
export type ExportedUsageEvent = Omit<UsageEventRow, "merchant_id" | "customer_ref" | "amount_band" | "recency_ref">;

export interface ExportedUsageSummary {
  bucket: string;
  method_id: string;
  uses: number;
  last_used_at: string;
}

export interface ExportedConsent {
  consent_type: string;
  action: string;
  timestamp: string;
}

/** Everything stored about one customer at one merchant (API.md §3), read in one D1 batch. */
export interface CustomerData {
  deletion: DeletionState | null;
  preferences: StoredPreferences | null;
  usage_events: ExportedUsageEvent[];
  usage_summary: ExportedUsageSummary[];
  consent_log: ExportedConsent[];
}

export async function readCustomerData(db: D1Database, merchantId: string, customerRef: string): Promise<CustomerData> {
  const bind = (sql: string) => db.prepare(sql).bind(merchantId, customerRef);
  const [deletion, prefs, events, stats, consent] = await db.batch<unknown>([
    bind("SELECT status, requested_at, purge_after, purged_at FROM customer_deletions WHERE merchant_id = ? AND customer_ref = ?"),
    bind(`SELECT ${PREFERENCE_COLUMNS} FROM preferences WHERE merchant_id = ? AND customer_ref = ?`),
    bind(
      `SELECT event_id, method_id, amount, currency, device_type, location_country, decision_id, offer_id, occurred_at, received_at
       FROM usage_events WHERE merchant_id = ? AND customer_ref = ? ORDER BY occurred_at, id`,
    ),
    bind("SELECT bucket, method_id, uses, last_used_at FROM method_stats WHERE merchant_id = ? AND customer_ref = ? ORDER BY bucket, method_id"),
    bind("SELECT consent_type, action, created_at AS timestamp FROM consent_log WHERE merchant_id = ? AND customer_ref = ? ORDER BY id"),
  ]);
  const prefRow = prefs!.results[0] as PreferenceRow | undefined;
  return {
    deletion: (deletion!.results[0] as DeletionState | undefined) ?? null,
    preferences: prefRow ? fromPreferenceRow(prefRow) : null,
    usage_events: events!.results as ExportedUsageEvent[],
    usage_summary: stats!.results as ExportedUsageSummary[],
    consent_log: consent!.results as ExportedConsent[],
  };
}
