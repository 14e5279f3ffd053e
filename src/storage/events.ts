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

/**
 * `opted_out` / `pending_deletion`: the customer was, now or when the event was received;
 * `purged`: received before the customer's purge, consumed after it (a queue delay or retry);
 * `expired`: paid before the accept cutoff at the consumer's clock (src/analytics/horizons.ts: consumed over an hour late).
 */
export type DropReason = "opted_out" | "pending_deletion" | "purged" | "expired";

export interface StoreOutcome {
  /** Indexes (into the input) of the rows actually inserted: first delivery of their event id. */
  inserted: number[];
  /** Index → why the event was not stored against its customer. */
  dropped: Map<number, DropReason>;
  /** Rows skipped because (merchant_id, event_id) was already stored (retry, redelivery). */
  duplicates: number[];
}

/**
 * A customer_deletions row that says its customer was erased at or after `time` (an SQL expression):
 * a row made before the purge but written after it (still queued at the purge) must not carry the
 * customer (API.md §3). The purge is the tombstone's, or, while a new deletion request has reopened
 * it (migration 0017), the one it keeps in reopened_from, which a restore puts back. Shared by every
 * writer of customer rows: usage events here, analytics (src/analytics/store.ts), dead letters.
 */
export const purgedAtOrAfter = (time: string) => `(CASE status WHEN 'purged' THEN purged_at ELSE reopened_from ->> 'purged_at' END) >= ${time}`;

/**
 * The customer had opted out of personalization at `time`: the last personalization entry of the
 * consent log up to then (written in one batch with every change, src/storage/preferences.ts) says
 * revoked. Reads the customer's entries newest first (idx_consent_log_customer).
 */
const optedOutAt = (m: string, ref: string, time: string) => `EXISTS (SELECT 1 FROM (
  SELECT action FROM consent_log WHERE merchant_id = ${m} AND customer_ref = ${ref} AND consent_type = 'personalization' AND created_at <= ${time}
  ORDER BY id DESC LIMIT 1) WHERE action = 'revoked')`;

/**
 * The customer's deletion was pending at `time`: the last delete, restore or purge in the
 * data-rights audit up to then (written in one batch with each, src/storage/deletions.ts) is a delete.
 */
const pendingAt = (m: string, ref: string, time: string) => `EXISTS (SELECT 1 FROM (
  SELECT action FROM data_rights_audit WHERE merchant_id = ${m} AND customer_ref = ${ref} AND action IN ('delete', 'restore', 'purge') AND created_at <= ${time}
  ORDER BY id DESC LIMIT 1) WHERE action = 'delete')`;

/**
 * The opt-out and deletion checks sit inside the INSERT itself, so no consent change can slip in
 * between check and write. An event is not stored against its customer when, now or when the API
 * received it, the customer had opted out or was pending deletion, or when the customer was purged
 * after receiving it: what is decided is the state at receipt (API.md §2 "events of a customer who
 * opted out … or whose deletion is pending are not stored"), not whichever state a queue delay, a
 * retry or a re-driven dead letter happens to meet, and a later opt-out or deletion still wins. A
 * skipped row (duplicate or blocked) fires no trigger, so the aggregates count each stored event
 * exactly once. Nor is an event paid before ?15, the accept cutoff at the consumer's clock
 * (src/analytics/horizons.ts): retention may have deleted its stored row, so a redelivery or a
 * re-driven dead letter would insert it anew and count it twice. Retention deletes only rows an hour
 * older than that cutoff, so a batch that read its clock before an hour boundary and commits after a
 * retention run still finds every row it could duplicate.
 */
const INSERT_EVENT = `
INSERT INTO usage_events (merchant_id, event_id, customer_ref, method_id, amount, currency, device_type,
  location_country, decision_id, offer_id, amount_band, recency_ref, occurred_at, received_at)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14
WHERE NOT EXISTS (SELECT 1 FROM preferences WHERE merchant_id = ?1 AND customer_ref = ?3 AND personalization_enabled = 0)
  AND NOT EXISTS (SELECT 1 FROM customer_deletions WHERE merchant_id = ?1 AND customer_ref = ?3
                  AND (status = 'pending' OR (${purgedAtOrAfter("?14")})))
  AND NOT ${optedOutAt("?1", "?3", "?14")}
  AND NOT ${pendingAt("?1", "?3", "?14")}
  AND ?13 >= ?15
ON CONFLICT (merchant_id, event_id) DO NOTHING
RETURNING id`;

/** Why each event would be blocked (the INSERT's conditions, one row per event), read in the same transaction as the inserts (for the outcome). */
const BLOCKED_EVENTS = `
WITH ev (i, merchant_id, customer_ref, received_at, occurred_at) AS (
  SELECT key, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), json_extract(value, '$[3]') FROM json_each(?1)
)
SELECT i, ev.occurred_at < ?2 AS expired,
  (SELECT status FROM customer_deletions AS d WHERE d.merchant_id = ev.merchant_id AND d.customer_ref = ev.customer_ref
     AND (d.status = 'pending' OR ${purgedAtOrAfter("ev.received_at")})) AS deletion,
  ${pendingAt("ev.merchant_id", "ev.customer_ref", "ev.received_at")} AS pending_then,
  EXISTS (SELECT 1 FROM preferences AS p WHERE p.merchant_id = ev.merchant_id AND p.customer_ref = ev.customer_ref AND p.personalization_enabled = 0)
    OR ${optedOutAt("ev.merchant_id", "ev.customer_ref", "ev.received_at")} AS opted_out
FROM ev`;


/**
 * Writes up to 100 events with ONE D1 batch (one implicit transaction): the blocked-customer read,
 * one INSERT per event, then `extra` statements (e.g. conversion records) that must commit with them.
 * `rawCutoff` is the accept cutoff at the caller's clock (events paid before it are
 * dropped as expired, INSERT_EVENT). Throws when D1 fails; nothing of the batch is then committed.
 */
export async function storeUsageEvents(db: D1Database, rows: UsageEventRow[], rawCutoff: string, extra: D1PreparedStatement[] = []): Promise<StoreOutcome> {
  const statements = [
    db.prepare(BLOCKED_EVENTS).bind(JSON.stringify(rows.map((r) => [r.merchant_id, r.customer_ref, r.received_at, r.occurred_at])), rawCutoff),
    ...rows.map((r) =>
      db
        .prepare(INSERT_EVENT)
        .bind(
          r.merchant_id, r.event_id, r.customer_ref, r.method_id, r.amount, r.currency, r.device_type,
          r.location_country, r.decision_id, r.offer_id, r.amount_band, r.recency_ref, r.occurred_at, r.received_at, rawCutoff,
        ),
    ),
    ...extra,
  ];
  const [blockedResult, ...insertResults] = await db.batch<Record<string, unknown>>(statements);

  // Per event; a deletion wins over an opt-out, and both over an expired event.
  const reasons = new Map<number, DropReason>();
  for (const row of blockedResult!.results as { i: number; expired: number; deletion: "pending" | "purged" | null; pending_then: number; opted_out: number }[]) {
    const reason: DropReason | null =
      row.deletion === "pending" || row.pending_then ? "pending_deletion" : row.deletion === "purged" ? "purged" : row.opted_out ? "opted_out" : row.expired ? "expired" : null;
    if (reason) reasons.set(row.i, reason);
  }
  const outcome: StoreOutcome = { inserted: [], dropped: new Map(), duplicates: [] };
  rows.forEach((r, i) => {
    if (insertResults[i]!.results.length > 0) outcome.inserted.push(i);
    else {
      const reason = reasons.get(i);
      if (reason) outcome.dropped.set(i, reason);
      else outcome.duplicates.push(i);
    }
  });
  return outcome;
}
