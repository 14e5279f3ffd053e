import type { Env } from "../env";
import { CUSTOMER_DATA_TABLES, type CustomerTablePurge, claimDueDeletions, markPurged, purgeRound } from "../storage/deletions";
import { invalidateProfile } from "../storage/profile";
import { QueryBudget } from "./budget";

/**
 * Erases customers whose grace period has passed (API.md §3): every row in every customer table
 * (the list is CUSTOMER_DATA_TABLES in src/storage/deletions.ts: add new tables there), the cached
 * profile, then marks the deletion `purged` and audits it. Consent-log rows stay for their legal
 * retention, with an entry (reason 'erasure') for each consent the erasure changes.
 *
 * Set-based: a run takes the oldest `maxCustomers` due deletions and each round is one DELETE per
 * table over all of them, so a run costs a few queries plus one per table per `chunk` rows, however
 * many customers it erases. Customers left with no row are marked purged in one transaction at the
 * end, even when the rounds stopped early (a customer with a long history does not hold back those
 * whose rows are gone); the rest stay pending and due for the next run. Safe to re-run.
 */
export interface PurgeOptions {
  /** Due customers a run takes (oldest `purge_after` first); each marked one costs a KV delete, and KV allows 1,000 operations per invocation. */
  maxCustomers?: number;
  /** Rows each statement deletes at most per round. */
  chunk?: number;
  /** Rounds per run. */
  maxRounds?: number;
  tables?: CustomerTablePurge[];
  /** D1 queries this run may spend (src/jobs/budget.ts); what does not fit waits for the next run. */
  budget?: QueryBudget;
}

export interface PurgeReport {
  customers_purged: number;
  rows_deleted: number;
  /** Due customers left for the next run (a bound or the query budget reached). */
  unfinished: number;
}

/** Queries of the mark: the audit rows, the tombstone update, the count of what is left. */
const MARK_QUERIES = 3;

export async function purgeDueCustomers(env: Pick<Env, "DB" | "CACHE">, now: Date, opts: PurgeOptions = {}): Promise<PurgeReport> {
  const { maxCustomers = 200, chunk = 500, maxRounds = 100, tables = CUSTOMER_DATA_TABLES, budget = new QueryBudget(500) } = opts;
  const at = now.toISOString();
  const report: PurgeReport = { customers_purged: 0, rows_deleted: 0, unfinished: 0 };
  // The mark is reserved up front: deleting rows without marking anyone would only move work.
  if (!budget.take(1 + MARK_QUERIES)) return report;
  // Claimed first: from then on a restore of these customers answers 404, as after the purge.
  const bound = await claimDueDeletions(env.DB, at, maxCustomers);
  if (bound === null) return report;
  // A round is one statement per table, and one more per table that logs what its delete changes.
  const roundQueries = tables.length + tables.filter((t) => t.log).length;
  for (let round = 0; round < maxRounds && budget.take(roundQueries); round++) {
    const result = await purgeRound(env.DB, bound, chunk, at, tables);
    report.rows_deleted += result.deleted;
    if (result.complete) break;
  }
  const { purged, remaining } = await markPurged(env.DB, bound, at, maxCustomers, tables);
  report.customers_purged = purged.length;
  report.unfinished = remaining;
  // A cached entry only says "pending deletion" by now; drop it anyway so nothing of the customer stays.
  await Promise.all(purged.map((c) => invalidateProfile(env, c.merchant_id, c.customer_ref)));
  return report;
}
