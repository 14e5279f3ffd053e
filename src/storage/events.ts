/** One row of usage_events (migration 0001); aggregates follow by trigger (migration 0002). */
export interface UsageEventRow {
  merchant_id: string;
  event_id: string;
  customer_ref: string;
  method_id: string;
  amount: number | null;
  currency: string | null;
  device_type: string | null;
  location_country: string | null;
  decision_id: string | null;
  offer_id: string | null;
  amount_band: number | null;
  recency_ref: number;
  occurred_at: string;
  received_at: string;
}

/** `purged`: received before the customer's purge, consumed after it (a queue delay or retry). */
export type DropReason = "opted_out" | "pending_deletion" | "purged";

export interface StoreOutcome {
  /** Indexes (into the input) of the rows actually inserted: first delivery of their event id. */
  inserted: number[];
  /** Index → why the event was not stored against its customer. */
  dropped: Map<number, DropReason>;
  /** Rows skipped because (merchant_id, event_id) was already stored (retry, redelivery). */
  duplicates: number[];
}

/**
 * The opt-out and pending-deletion checks sit inside the INSERT itself, so no consent change can
 * slip in between check and write. An event received before the customer's purge is dropped too:
 * once the tombstone says `purged` the pending check no longer holds, and an event still on the
 * queue then (a delivery delay, a retry after a D1 failure) would outlive the erasure. A skipped
 * row (duplicate or blocked) fires no trigger, so the aggregates count each stored event exactly once.
 */
/**
 * A customer_deletions row that says its customer was erased at or after `time` (an SQL expression):
 * a row made before the purge but written after it (still queued at the purge) must not carry the
 * customer (API.md §3). Shared with the analytics writes (src/analytics/store.ts).
 */
export const purgedAtOrAfter = (time: string) => `status = 'purged' AND purged_at >= ${time}`;

const INSERT_EVENT = `
INSERT INTO usage_events (merchant_id, event_id, customer_ref, method_id, amount, currency, device_type,
  location_country, decision_id, offer_id, amount_band, recency_ref, occurred_at, received_at)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14
WHERE NOT EXISTS (SELECT 1 FROM preferences WHERE merchant_id = ?1 AND customer_ref = ?3 AND personalization_enabled = 0)
  AND NOT EXISTS (SELECT 1 FROM customer_deletions WHERE merchant_id = ?1 AND customer_ref = ?3
                  AND (status = 'pending' OR (${purgedAtOrAfter("?14")})))
ON CONFLICT (merchant_id, event_id) DO NOTHING
RETURNING id`;

/** Which of the touched customers are blocked, read in the same transaction as the inserts (for the outcome). */
const BLOCKED_CUSTOMERS = `
WITH touched (merchant_id, customer_ref) AS (
  SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?1)
)
SELECT t.merchant_id, t.customer_ref, CASE d.status WHEN 'pending' THEN 'pending_deletion' ELSE 'purged' END AS reason, d.purged_at
FROM touched AS t JOIN customer_deletions AS d ON d.merchant_id = t.merchant_id AND d.customer_ref = t.customer_ref
UNION ALL
SELECT t.merchant_id, t.customer_ref, 'opted_out' AS reason, NULL AS purged_at
FROM touched AS t JOIN preferences AS p ON p.merchant_id = t.merchant_id AND p.customer_ref = t.customer_ref
WHERE p.personalization_enabled = 0`;

const pairKey = (merchantId: string, customerRef: string) => `${merchantId}\u0000${customerRef}`;

/**
 * Writes up to 100 events with ONE D1 batch (one implicit transaction): the blocked-customer read,
 * one INSERT per event, then `extra` statements (e.g. conversion records) that must commit with them.
 * Throws when D1 fails; nothing of the batch is then committed.
 */
export async function storeUsageEvents(db: D1Database, rows: UsageEventRow[], extra: D1PreparedStatement[] = []): Promise<StoreOutcome> {
  const touched = [...new Map(rows.map((r) => [pairKey(r.merchant_id, r.customer_ref), [r.merchant_id, r.customer_ref]])).values()];
  const statements = [
    db.prepare(BLOCKED_CUSTOMERS).bind(JSON.stringify(touched)),
    ...rows.map((r) =>
      db
        .prepare(INSERT_EVENT)
        .bind(
          r.merchant_id, r.event_id, r.customer_ref, r.method_id, r.amount, r.currency, r.device_type,
          r.location_country, r.decision_id, r.offer_id, r.amount_band, r.recency_ref, r.occurred_at, r.received_at,
        ),
    ),
    ...extra,
  ];
  const [blockedResult, ...insertResults] = await db.batch<Record<string, unknown>>(statements);

  // Per customer, in the query's order (a deletion first, so it wins); a purge blocks only the events received before it.
  const blocked = new Map<string, { reason: DropReason; purged_at: string | null }[]>();
  for (const row of blockedResult!.results as { merchant_id: string; customer_ref: string; reason: DropReason; purged_at: string | null }[]) {
    const key = pairKey(row.merchant_id, row.customer_ref);
    blocked.set(key, [...(blocked.get(key) ?? []), row]);
  }
  const outcome: StoreOutcome = { inserted: [], dropped: new Map(), duplicates: [] };
  rows.forEach((r, i) => {
    if (insertResults[i]!.results.length > 0) outcome.inserted.push(i);
    else {
      const block = blocked.get(pairKey(r.merchant_id, r.customer_ref))?.find((b) => b.reason !== "purged" || b.purged_at! >= r.received_at);
      if (block) outcome.dropped.set(i, block.reason);
      else outcome.duplicates.push(i);
    }
  });
  return outcome;
}
