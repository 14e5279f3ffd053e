import type { AnalyticsMessage, DecisionMessage, OffersShownMessage } from "../schemas/analytics";
import type { FeedbackMessage } from "../schemas/feedback";
import { purgedAtOrAfter } from "../storage/events";
import { timeToPayBin } from "./stats";

/**
 * Writes of raw analytics rows (migration 0005). Every insert is ON CONFLICT DO NOTHING on the
 * row's natural key, so a redelivered message or a retried batch never adds a row. None stores a row
 * dated before `rawCutoff`, the accept cutoff at the consumer's clock (a message consumed over an
 * hour late, a re-driven dead letter; src/analytics/horizons.ts): its hour may be final and its raw
 * rows may be gone.
 */

/** A decision's key: the signature part of its id (a 128-bit HMAC, unique per decision, 22 chars). */
export function decisionKey(decisionId: string): string {
  const dot = decisionId.lastIndexOf(".");
  return dot === -1 ? decisionId : decisionId.slice(dot + 1);
}

/**
 * The customer_ref to store for a row of customer `ref` made at `time` (both parameters): none when
 * that customer was purged at or after `time`. Such a message was still on the analytics queue at
 * the purge (a delivery delay, a retry); stored with its pseudonym it would outlive the erasure,
 * which never comes back for it (API.md §3), while the row itself still counts in the merchant's
 * numbers (§6).
 */
const refUnlessPurged = (ref: string, time: string) =>
  `CASE WHEN EXISTS (SELECT 1 FROM customer_deletions WHERE merchant_id = ?1 AND customer_ref = ${ref} AND ${purgedAtOrAfter(time)}) THEN NULL ELSE ${ref} END`;

const INSERT_DECISION = `
INSERT INTO analytics_decisions (merchant_id, decision_key, customer_ref, decided_at, arm, personalized, fallback_reason,
  ranked, device_type, country, currency, cache, holdout_percent)
SELECT ?1, ?2, ${refUnlessPurged("?3", "?4")}, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13 WHERE ?4 >= ?14
ON CONFLICT (merchant_id, decision_key) DO NOTHING`;

/**
 * Every offer of one impression in ONE statement (?3: the offer ids as a JSON array). One statement
 * per offer made a batch of 100 impressions of a merchant with 10+ offers pass D1's 1,000 queries
 * per invocation, failing every delivery of it (the analytics queue would jam).
 */
const INSERT_IMPRESSION = `
INSERT INTO analytics_offer_impressions (merchant_id, impression_id, offer_id, customer_ref, shown_at)
SELECT ?1, ?2, value, ${refUnlessPurged("?4", "?5")}, ?5 FROM json_each(?3) WHERE ?5 >= ?6
ON CONFLICT (merchant_id, impression_id, offer_id) DO NOTHING`;

function decisionStatement(db: D1Database, d: DecisionMessage, rawCutoff: string): D1PreparedStatement {
  return db
    .prepare(INSERT_DECISION)
    .bind(
      d.merchant_id, decisionKey(d.decision_id), d.customer_ref, d.issued_at, d.arm, d.personalized ? 1 : 0, d.fallback_reason,
      JSON.stringify(d.ranked), d.device_type, d.country, d.currency, d.cache, d.holdout_percent ?? null, rawCutoff,
    );
}

function impressionStatement(db: D1Database, o: OffersShownMessage, rawCutoff: string): D1PreparedStatement {
  return db.prepare(INSERT_IMPRESSION).bind(o.merchant_id, o.impression_id, JSON.stringify([...new Set(o.offer_ids)]), o.customer_ref, o.shown_at, rawCutoff);
}

/** When the row of an analytics message is dated (what the accept cutoff is compared with). */
export const analyticsMessageTime = (m: AnalyticsMessage) => (m.kind === "decision" ? m.issued_at : m.shown_at);

/** The one statement that stores one analytics queue message (a batch of 100 messages is 100 D1 queries); nothing dated before `rawCutoff`. */
export function analyticsMessageStatement(db: D1Database, m: AnalyticsMessage, rawCutoff: string): D1PreparedStatement {
  return m.kind === "decision" ? decisionStatement(db, m, rawCutoff) : impressionStatement(db, m, rawCutoff);
}

/**
 * A conversion is written only when its usage event is stored: the statement runs in the feedback
 * consumer's D1 batch AFTER the usage-event inserts and requires that row (same merchant, event_id
 * and decision_id) to exist. ON CONFLICT makes a decision convert at most once: the first stored
 * event wins; a redelivered event, a client retry or a second event for the same decision adds
 * nothing. Arm, rank and decision time come from the verified decision_id (the message's
 * `decision`), so the decision row need not exist yet. A decision issued before the raw-retention
 * cutoff no longer converts (its hour is final and its raw rows may be gone; the payment is stored).
 */
const INSERT_CONVERSION = `
INSERT INTO analytics_conversions (merchant_id, decision_key, event_id, customer_ref, arm, fallback_reason, method_id, rank,
  amount, currency, decided_at, occurred_at, ttp_bin)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13
WHERE EXISTS (SELECT 1 FROM usage_events WHERE merchant_id = ?1 AND event_id = ?3 AND decision_id = ?14) AND ?11 >= ?15
ON CONFLICT (merchant_id, decision_key) DO NOTHING`;

/**
 * CONVERSION HOOK of the feedback consumer: statements to append to its usage-event batch (same
 * transaction), with the same `rawCutoff`. Time to pay is clamped at 0 (occurred_at may run up to 5 minutes ahead by clock skew).
 */
export function conversionStatements(db: D1Database, events: FeedbackMessage[], rawCutoff: string): D1PreparedStatement[] {
  const out: D1PreparedStatement[] = [];
  for (const e of events) {
    const d = e.decision;
    if (!d) continue;
    const ttp = Math.max(0, Date.parse(e.occurred_at) - Date.parse(d.issued_at));
    out.push(
      db
        .prepare(INSERT_CONVERSION)
        .bind(
          e.merchant_id, decisionKey(d.decision_id), e.event_id, e.customer_ref, d.arm, d.fallback_reason, e.method_id, d.rank ?? 0,
          e.amount, e.currency, d.issued_at, e.occurred_at, timeToPayBin(ttp), d.decision_id, rawCutoff,
        ),
    );
  }
  return out;
}

/** Raw analytics tables holding customer_ref (the rollups hold none). */
export const ANALYTICS_CUSTOMER_TABLES = [
  { table: "analytics_decisions", keyColumns: ["decision_key"] },
  { table: "analytics_conversions", keyColumns: ["decision_key"] },
  { table: "analytics_offer_impressions", keyColumns: ["impression_id", "offer_id"] },
] as const;

