/**
 * All SQL of the customer data lifecycle (API.md §3): deletion requests, restore, purge, retention
 * and the data-rights audit trail (migrations 0003, 0004). Rows are keyed by `customer_ref`, the
 * HMAC pseudonym; no customer id in the clear is ever written here.
 */

import { ANALYTICS_CUSTOMER_TABLES } from "../analytics/store";
import { crossMerchantPeerPage } from "./consent";
import { DEAD_LETTERS_PURGE, DEAD_LETTERS_RETENTION } from "./deadLetters";

export const GRACE_PERIOD_MS = 30 * 24 * 3600 * 1000;

export type DataRightsAction = "delete" | "restore" | "purge" | "export";

/** Who did it: the API key's id (or "cron"), the request id, and when. */
export interface AuditStamp {
  actor: string;
  requestId: string | null;
  at: string;
}

export interface DeletionState {
  status: "pending" | "purged";
  requested_at: string;
  purge_after: string;
  purged_at: string | null;
}

const INSERT_AUDIT_IF = (condition: string) =>
  `INSERT INTO data_rights_audit (merchant_id, customer_ref, action, actor, request_id, created_at)
   SELECT ?1, ?2, ?3, ?4, ?5, ?6 FROM customer_deletions
   WHERE merchant_id = ?1 AND customer_ref = ?2 AND ${condition}`;

/**
 * Starts the grace period, or keeps the one that runs (a repeated request keeps its first
 * `purge_after`). A purged tombstone is reopened: the customer came back and is being erased again
 * (the tombstone it was is kept in `reopened_from`, for a restore to put back; migration 0017).
 * Returns the pending state, whether this call created it, and the first page of the other merchants
 * whose cached profiles may hold this customer's counts through cross-merchant consent (the caller
 * reads the rest with crossMerchantPeers).
 */
export async function requestDeletion(
  db: D1Database,
  merchantId: string,
  customerRef: string,
  stamp: AuditStamp,
): Promise<{ purge_after: string; created: boolean; firstPeerPage: string[] }> {
  const purgeAfter = new Date(Date.parse(stamp.at) + GRACE_PERIOD_MS).toISOString();
  const [, audit, state, cross] = await db.batch([
    db
      .prepare(
        `INSERT INTO customer_deletions (merchant_id, customer_ref, status, requested_at, purge_after, purged_at)
         VALUES (?1, ?2, 'pending', ?3, ?4, NULL)
         ON CONFLICT (merchant_id, customer_ref) DO UPDATE SET
           status = 'pending', requested_at = excluded.requested_at, purge_after = excluded.purge_after, purged_at = NULL, purge_started_at = NULL,
           reopened_from = json_object('requested_at', requested_at, 'purge_after', purge_after, 'purged_at', purged_at)
         WHERE customer_deletions.status = 'purged'`,
      )
      .bind(merchantId, customerRef, stamp.at, purgeAfter),
    // Audited once per grace period: only when this call (re)started it.
    db.prepare(INSERT_AUDIT_IF("status = 'pending' AND requested_at = ?6")).bind(merchantId, customerRef, "delete", stamp.actor, stamp.requestId, stamp.at),
    db.prepare("SELECT purge_after FROM customer_deletions WHERE merchant_id = ? AND customer_ref = ?").bind(merchantId, customerRef),
    crossMerchantPeerPage(db, merchantId, customerRef),
  ]);
  const row = state!.results[0] as { purge_after: string };
  return {
    purge_after: row.purge_after,
    created: (audit!.meta.changes ?? 0) > 0,
    firstPeerPage: (cross!.results as { merchant_id: string }[]).map((r) => r.merchant_id),
  };
}

/**
 * Ends a pending deletion within its grace period. False when there is none (unknown, restored,
 * purged or past due) or when a purge run has claimed it (migration 0021: its rows may be gone
 * already, so it answers as after the purge); also the first page of cross-merchant peers, as
 * above. The row goes, unless it was a reopened tombstone: then the tombstone comes back as it was (status purged, its purged_at),
 * so what was received before that purge still cannot be stored and the export still knows it.
 */
export async function cancelDeletion(
  db: D1Database,
  merchantId: string,
  customerRef: string,
  stamp: AuditStamp,
): Promise<{ restored: boolean; firstPeerPage: string[] }> {
  const inGrace = "status = 'pending' AND purge_after > ?6 AND purge_started_at IS NULL";
  const where = `merchant_id = ?1 AND customer_ref = ?2 AND ${inGrace.replace("?6", "?3")}`;
  const [, reclosed, removed, cross] = await db.batch([
    db.prepare(INSERT_AUDIT_IF(inGrace)).bind(merchantId, customerRef, "restore", stamp.actor, stamp.requestId, stamp.at),
    db
      .prepare(
        `UPDATE customer_deletions SET status = 'purged', requested_at = reopened_from ->> 'requested_at',
           purge_after = reopened_from ->> 'purge_after', purged_at = reopened_from ->> 'purged_at', reopened_from = NULL
         WHERE ${where} AND reopened_from IS NOT NULL`,
      )
      .bind(merchantId, customerRef, stamp.at),
    db.prepare(`DELETE FROM customer_deletions WHERE ${where}`).bind(merchantId, customerRef, stamp.at),
    crossMerchantPeerPage(db, merchantId, customerRef),
  ]);
  return {
    restored: (reclosed!.meta.changes ?? 0) + (removed!.meta.changes ?? 0) > 0,
    firstPeerPage: (cross!.results as { merchant_id: string }[]).map((r) => r.merchant_id),
  };
}

export async function readDeletion(db: D1Database, merchantId: string, customerRef: string): Promise<DeletionState | null> {
  return db
    .prepare("SELECT status, requested_at, purge_after, purged_at FROM customer_deletions WHERE merchant_id = ? AND customer_ref = ?")
    .bind(merchantId, customerRef)
    .first<DeletionState>();
}

/** Records an action that changes no lifecycle state (an export). */
export async function recordAudit(db: D1Database, merchantId: string, customerRef: string, action: DataRightsAction, stamp: AuditStamp): Promise<void> {
  await db
    .prepare("INSERT INTO data_rights_audit (merchant_id, customer_ref, action, actor, request_id, created_at) VALUES (?, ?, ?, ?, ?, ?)")
    .bind(merchantId, customerRef, action, stamp.actor, stamp.requestId, stamp.at)
    .run();
}

// ---------------------------------------------------------------------------------------------
// Purge

/**
 * A table that holds customer rows, as the purge sees it. The purge is set-based: each statement
 * works on every due customer of a run at once (src/jobs/purge.ts), so its cost grows with the rows
 * to delete, not with the number of customers. A later table holding customer_ref adds ONE line to
 * CUSTOMER_DATA_TABLES, e.g. `customerRows("analytics_decisions", ["decision_key"])`.
 * Not listed on purpose: consent_log (kept 3 years as proof of consent, API.md §3; the preferences
 * delete appends the consents the erasure changes to it),
 * method_popularity (merchant-level aggregate without customer ids), data_rights_audit and the
 * customer_deletions tombstone (hold only the pseudonym and the fact of the erasure).
 */
export interface CustomerTablePurge {
  table: string;
  /** The columns that name one row: a rowid alias or the primary key. */
  keyColumns: readonly string[];
  /** SQL: row `t` of this table belongs to the customer of deletion `d` (a customer_deletions row). */
  match: string;
  /**
   * SQL that runs first in the same D1 batch and logs what deleting a chunk changes, given that
   * chunk (a subquery whose rows are whole rows `t.*` of the table). Parameters: ?1 the bound, ?2 the
   * chunk size, ?3 the run's clock. The chunk is then ordered by purge_after and `keyColumns`, so
   * the log and the delete pick the very same rows inside their transaction.
   */
  log?: (chunk: string) => string;
}

const SAME_CUSTOMER = "t.merchant_id = d.merchant_id AND t.customer_ref = d.customer_ref";

export function customerRows(table: string, keyColumns: readonly string[], match = SAME_CUSTOMER, log?: CustomerTablePurge["log"]): CustomerTablePurge {
  return log ? { table, keyColumns, match, log } : { table, keyColumns, match };
}

/**
 * A purge write's time: when it commits, or the run's `clock` (a parameter) when that is later. The
 * run's scheduled time can precede what happened while it ran (see PURGED_AT below).
 */
const atCommit = (clock: string) => `max(${clock}, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`;

/**
 * The consent-log rows of the consents an erasure changes (migration 0015): with the preferences row
 * gone, a cross-merchant consent reads as not given and an opt-out of personalization as the default
 * (on). Logged with reason 'erasure' and dated when the purge commits (atCommit: a consent change the
 * customer made while the run was in flight comes before it, so the log stays oldest first and ends in
 * the state the erasure left), so that the log, which outlives the purge as the merchant's proof of
 * consent, still tells the consent's whole story, and tells these apart from the customer's own changes.
 */
const erasedConsents = (chunk: string) =>
  `INSERT INTO consent_log (merchant_id, customer_ref, consent_type, action, created_at, reason)
   SELECT merchant_id, customer_ref, 'cross_merchant', 'revoked', ${atCommit("?3")}, 'erasure' FROM (${chunk}) WHERE cross_merchant_consent = 1
   UNION ALL
   SELECT merchant_id, customer_ref, 'personalization', 'granted', ${atCommit("?3")}, 'erasure' FROM (${chunk}) WHERE personalization_enabled = 0`;

export const CUSTOMER_DATA_TABLES: CustomerTablePurge[] = [
  customerRows("usage_events", ["id"]),
  customerRows("method_stats", ["merchant_id", "customer_ref", "bucket", "method_id"]),
  customerRows("preferences", ["merchant_id", "customer_ref"], SAME_CUSTOMER, erasedConsents),
  // Raw analytics facts (migration 0005); their rollups hold no customer ids and stay (API.md §6).
  ...ANALYTICS_CUSTOMER_TABLES.map((t) => customerRows(t.table, ["merchant_id", ...t.keyColumns])),
  DEAD_LETTERS_PURGE, // migration 0007; also letters whose body named no merchant
];

/** Tables that keep a purged customer's pseudonym on purpose (see above); every other table holding customer_ref must be in CUSTOMER_DATA_TABLES. */
export const KEPT_AFTER_PURGE = ["consent_log", "customer_deletions", "data_rights_audit"] as const;

/**
 * The deletions of one purge run: pending, claimed, and due no later than ?1 (the run's bound, at
 * most the run's clock). Only claimed ones: a restore can no longer cancel those (cancelDeletion), so
 * no customer is erased while a restore brings it back. Read through the partial index of due
 * deletions, so a run touches its own customers and nobody else's rows (test/api/queryPlans.test.ts).
 */
const RUN_DELETIONS = "customer_deletions AS d INDEXED BY idx_customer_deletions_due";
const IN_RUN = "d.status = 'pending' AND d.purge_after <= ?1 AND d.purge_started_at IS NOT NULL";

/**
 * The rows of `t` one purge round deletes: at most ?2 of the run's customers' rows. CROSS JOIN keeps
 * the run's deletions as the outer loop, so the table is searched per customer. A logged table's
 * chunk is ordered by purge_after and its key, so its log statement and its delete see the same rows.
 */
const purgeChunk = (t: CustomerTablePurge) =>
  `SELECT t.* FROM ${RUN_DELETIONS} CROSS JOIN ${t.table} AS t ON ${t.match}
   WHERE ${IN_RUN}${t.log ? ` ORDER BY d.purge_after, ${t.keyColumns.map((c) => `t.${c}`).join(", ")}` : ""} LIMIT ?2`;

/**
 * When a customer counts as purged: when the mark commits, not the run's scheduled time. A cron
 * starts late and spends a while on rollups first; feedback received in between met a customer still
 * pending, and must be judged so (events.ts purgedAtOrAfter, the pending-at-receipt check), not as
 * arriving after the erasure. The run's clock still wins when it is later (tests run purges ahead).
 */
const PURGED_AT = atCommit("?2");

/**
 * The SQL of a purge run over `tables`. Parameters: `claim` ?1 the run's clock, ?2 the most customers
 * a run takes; `deletes` ?1 the bound, ?2 the most rows each statement deletes; `audit` and `mark`
 * ?1 the bound, ?2 the run's clock, ?3 the most customers marked; `remaining` ?1 the run's clock.
 */
export function purgeSql(tables: readonly CustomerTablePurge[] = CUSTOMER_DATA_TABLES) {
  const clean = tables.map((t) => `NOT EXISTS (SELECT 1 FROM ${t.table} AS t WHERE ${t.match})`).join(" AND ");
  // Customers of the run with no row left in any table, oldest first: the same set for both
  // statements of the mark (one transaction).
  const finished = `SELECT d.merchant_id, d.customer_ref FROM ${RUN_DELETIONS}
    WHERE ${IN_RUN} AND ${clean} ORDER BY d.purge_after, d.merchant_id, d.customer_ref LIMIT ?3`;
  return {
    /**
     * Claims the oldest ?2 due deletions (one statement, so a restore commits before it or finds the
     * claim) and returns their purge_after. One an unfinished run claimed keeps its first claim time.
     */
    claim: `UPDATE customer_deletions SET purge_started_at = coalesce(purge_started_at, ${atCommit("?1")})
      WHERE (merchant_id, customer_ref) IN
        (SELECT merchant_id, customer_ref FROM customer_deletions WHERE status = 'pending' AND purge_after <= ?1 ORDER BY purge_after LIMIT ?2)
      RETURNING purge_after`,
    deletes: tables.map((t) => {
      const key = t.keyColumns.length === 1 ? t.keyColumns[0]! : `(${t.keyColumns.join(", ")})`;
      return `DELETE FROM ${t.table} WHERE ${key} IN (SELECT ${t.keyColumns.join(", ")} FROM (${purgeChunk(t)}))`;
    }),
    /** Per table, the statement that logs what its delete changes (null: nothing to log). Parameters as `deletes`, and ?3 the run's clock. */
    logs: tables.map((t) => (t.log ? t.log(purgeChunk(t)) : null)),
    audit: `INSERT INTO data_rights_audit (merchant_id, customer_ref, action, actor, request_id, created_at)
      SELECT merchant_id, customer_ref, 'purge', 'cron', NULL, ${PURGED_AT} FROM (${finished})`,
    mark: `UPDATE customer_deletions SET status = 'purged', purged_at = ${PURGED_AT}, reopened_from = NULL, purge_started_at = NULL
      WHERE (merchant_id, customer_ref) IN (${finished}) RETURNING merchant_id, customer_ref`,
    remaining: "SELECT count(*) AS n FROM customer_deletions WHERE status = 'pending' AND purge_after <= ?1",
  };
}

export interface PurgedCustomer {
  merchant_id: string;
  customer_ref: string;
}

/**
 * Claims the oldest `limit` due deletions for a run and returns its bound (the latest purge_after
 * among them), or null when nothing is due at `now`.
 */
export async function claimDueDeletions(db: D1Database, now: string, limit: number): Promise<string | null> {
  const { results } = await db.prepare(purgeSql().claim).bind(now, limit).all<{ purge_after: string }>();
  return results.reduce<string | null>((bound, r) => (bound === null || r.purge_after > bound ? r.purge_after : bound), null);
}

/**
 * One round, one D1 batch: each table deletes at most `chunk` rows of the run's customers, a logged
 * table right after its log statement. `complete` when every table had fewer left.
 */
export async function purgeRound(
  db: D1Database,
  bound: string,
  chunk: number,
  now: string,
  tables: readonly CustomerTablePurge[] = CUSTOMER_DATA_TABLES,
): Promise<{ deleted: number; complete: boolean }> {
  const sql = purgeSql(tables);
  const statements: D1PreparedStatement[] = [];
  const deletes: number[] = [];
  sql.deletes.forEach((del, i) => {
    const log = sql.logs[i];
    if (log) statements.push(db.prepare(log).bind(bound, chunk, now));
    deletes.push(statements.push(db.prepare(del).bind(bound, chunk)) - 1);
  });
  const results = await db.batch(statements);
  const counts = deletes.map((i) => results[i]!.meta.changes ?? 0);
  return { deleted: counts.reduce((a, b) => a + b, 0), complete: counts.every((n) => n < chunk) };
}

/**
 * Marks the run's customers who have no row left purged and audits each, atomically (at most
 * `limit`); also counts the deletions still due at `now`, this run's unfinished ones included.
 */
export async function markPurged(
  db: D1Database,
  bound: string,
  now: string,
  limit: number,
  tables: readonly CustomerTablePurge[] = CUSTOMER_DATA_TABLES,
): Promise<{ purged: PurgedCustomer[]; remaining: number }> {
  const sql = purgeSql(tables);
  const [, marked, remaining] = await db.batch([
    db.prepare(sql.audit).bind(bound, now, limit),
    db.prepare(sql.mark).bind(bound, now, limit),
    db.prepare(sql.remaining).bind(now),
  ]);
  return { purged: marked!.results as PurgedCustomer[], remaining: (remaining!.results[0] as { n: number }).n };
}

// ---------------------------------------------------------------------------------------------
// Retention

/** A chunked delete (or reduction) of rows older than a cutoff. Parameters: ?1 cutoff (ISO text), ?2 chunk size. */
export interface RetentionRule {
  name: string;
  /** Which window applies (src/jobs/retention.ts turns it into a cutoff). */
  window: "raw_events" | "profile" | "legal_proof";
  /** The delete or update; its changes are the rows the rule removed. */
  sql: string;
  /**
   * Runs first, in the same D1 batch (one transaction): the consent-log rows of the consents the
   * `sql` lapses. Parameters as `sql`, and ?3 the run's clock (ISO text).
   */
  log?: string;
}

/**
 * A chunk of expired preferences rows. Ordered by the whole key of idx_preferences_last_use (the
 * expression, then the primary key its entries carry), so the log and the change of one rule pick
 * the very same rows inside their transaction.
 */
const expiredPreferences = (condition: string) =>
  `SELECT merchant_id, customer_ref, cross_merchant_consent FROM preferences
    WHERE ${LAST_USE} < ?1 AND ${condition}
    ORDER BY ${LAST_USE}, merchant_id, customer_ref LIMIT ?2`;

/**
 * A preferences row's last use: the later of the last payment and the last change of the row (a
 * customer who set exclusions yesterday used them). The expression of idx_preferences_last_use
 * (migration 0018), written exactly so the planner matches it.
 */
const LAST_USE = "max(coalesce(last_used_at, updated_at), updated_at)";

/**
 * The consent-log row of a cross-merchant consent that lapses with its expired preferences row: the
 * row goes (or keeps only an opt-out), so the consent reads as not given from now on. Logged as
 * revoked with reason 'retention' (migration 0012), so that the log, the merchant's proof of
 * consent, still tells the consent's story and tells it apart from the customer's own revocation.
 */
const lapsedCrossMerchantConsent = (chunk: string) =>
  `INSERT INTO consent_log (merchant_id, customer_ref, consent_type, action, created_at, reason)
   SELECT merchant_id, customer_ref, 'cross_merchant', 'revoked', ?3, 'retention' FROM (${chunk}) WHERE cross_merchant_consent = 1`;

const EXPIRED_PROFILES = expiredPreferences("personalization_enabled = 1");
// An opted-out row is reduced once: the condition holds only while something is left to remove.
const EXPIRED_OPT_OUTS = expiredPreferences(
  "personalization_enabled = 0 AND (default_method IS NOT NULL OR favorite_methods <> '[]' OR excluded_methods <> '[]' OR last_used_at IS NOT NULL OR cross_merchant_consent = 1)",
);

export const RETENTION_RULES: RetentionRule[] = [
  {
    // First, before any raw row goes: the hours this run deletes are final. A mark on one (a row stored
    // before the run, not rolled up yet) would have the rollup job rebuild it from the rows left,
    // erasing its numbers (src/analytics/rollups.ts finalBeforeMs keeps an hour past the cutoff open).
    name: "analytics_dirty_hours",
    window: "raw_events",
    sql: "DELETE FROM analytics_dirty_hours WHERE (merchant_id, hour) IN (SELECT merchant_id, hour FROM analytics_dirty_hours WHERE hour < ?1 LIMIT ?2)",
  },
  {
    name: "usage_events",
    window: "raw_events",
    sql: "DELETE FROM usage_events WHERE id IN (SELECT id FROM usage_events WHERE occurred_at < ?1 LIMIT ?2)",
  },
  {
    // The expression matches idx_preferences_last_use.
    name: "preferences",
    window: "profile",
    log: lapsedCrossMerchantConsent(EXPIRED_PROFILES),
    sql: `DELETE FROM preferences WHERE (merchant_id, customer_ref) IN (SELECT merchant_id, customer_ref FROM (${EXPIRED_PROFILES}))`,
  },
  {
    // An opt-out outlives the profile: deleting the row would turn personalization back on by default,
    // with no consent change on record, and the next payment would be stored and used again. Past the
    // window an opted-out row keeps only that; its methods and last use go like the rest of an
    // inactive profile, and a cross-merchant consent lapses as it does with a deleted row (logged).
    name: "preferences_opted_out",
    window: "profile",
    log: lapsedCrossMerchantConsent(EXPIRED_OPT_OUTS),
    sql: `UPDATE preferences SET default_method = NULL, favorite_methods = '[]', excluded_methods = '[]', last_used_at = NULL, cross_merchant_consent = 0
          WHERE (merchant_id, customer_ref) IN (SELECT merchant_id, customer_ref FROM (${EXPIRED_OPT_OUTS}))`,
  },
  {
    // Aggregates outlive raw events as the model's memory, but not an inactive customer's profile.
    name: "method_stats",
    window: "profile",
    sql: `DELETE FROM method_stats WHERE (merchant_id, customer_ref, bucket, method_id) IN
            (SELECT merchant_id, customer_ref, bucket, method_id FROM method_stats WHERE last_used_at < ?1 LIMIT ?2)`,
  },
  {
    name: "consent_log",
    window: "legal_proof",
    sql: "DELETE FROM consent_log WHERE id IN (SELECT id FROM consent_log WHERE created_at < ?1 LIMIT ?2)",
  },
  {
    name: "customer_deletions",
    window: "legal_proof",
    sql: `DELETE FROM customer_deletions WHERE (merchant_id, customer_ref) IN
            (SELECT merchant_id, customer_ref FROM customer_deletions WHERE status = 'purged' AND purged_at < ?1 LIMIT ?2)`,
  },
  {
    name: "data_rights_audit",
    window: "legal_proof",
    sql: "DELETE FROM data_rights_audit WHERE id IN (SELECT id FROM data_rights_audit WHERE created_at < ?1 LIMIT ?2)",
  },
  DEAD_LETTERS_RETENTION, // migration 0007
];

/** D1 queries one chunk of the rule costs. */
export const retentionChunkQueries = (rule: RetentionRule) => (rule.log ? 2 : 1);

export async function applyRetentionChunk(db: D1Database, rule: RetentionRule, cutoff: string, chunk: number, now: string): Promise<number> {
  const change = db.prepare(rule.sql).bind(cutoff, chunk);
  if (!rule.log) return (await change.run()).meta.changes ?? 0;
  const [, result] = await db.batch([db.prepare(rule.log).bind(cutoff, chunk, now), change]);
  return result!.meta.changes ?? 0;
}
