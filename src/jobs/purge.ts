import type { Env } from "../env";
import { CUSTOMER_DATA_TABLES, type CustomerTablePurge, dueDeletions, markPurged, purgeCustomerChunk } from "../storage/deletions";
import { invalidateProfile } from "../storage/profile";
import { QueryBudget } from "./budget";

/**
 * Erases customers whose grace period has passed (API.md §3): every row in every customer table
 * (the list is CUSTOMER_DATA_TABLES in src/storage/deletions.ts: add new tables there), the cached
 * profile, then marks the deletion `purged` and audits it. Consent-log rows stay for their legal
 * retention. Bounded per run; what is left is picked up by the next run; safe to re-run.
 */
export interface PurgeOptions {
  /** Customers handled per run. */
  maxCustomers?: number;
  /** Rows each statement deletes at most per round. */
  chunk?: number;
  /** Rounds per customer per run; a customer not finished stays pending and due. */
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

/** Queries of marking one customer purged (the audit row and the tombstone update). */
const MARK_QUERIES = 2;

export async function purgeDueCustomers(env: Pick<Env, "DB" | "CACHE">, now: Date, opts: PurgeOptions = {}): Promise<PurgeReport> {
  const { maxCustomers = 100, chunk = 500, maxRounds = 10, tables = CUSTOMER_DATA_TABLES, budget = new QueryBudget(500) } = opts;
  const at = now.toISOString();
  const report: PurgeReport = { customers_purged: 0, rows_deleted: 0, unfinished: 0 };
  if (!budget.take(1)) return report;
  const due = await dueDeletions(env.DB, at, maxCustomers);
  for (const [i, customer] of due.entries()) {
    let complete = false;
    let starved = false;
    for (let round = 0; round < maxRounds && !complete; round++) {
      if (!budget.take(tables.length)) {
        starved = true;
        break;
      }
      const result = await purgeCustomerChunk(env.DB, customer, chunk, tables);
      report.rows_deleted += result.deleted;
      complete = result.complete;
    }
    if (complete && !budget.take(MARK_QUERIES)) starved = true;
    if (starved) {
      report.unfinished += due.length - i; // this customer and every one after it
      break;
    }
    if (!complete) {
      report.unfinished += 1;
      continue;
    }
    if (await markPurged(env.DB, customer, at)) report.customers_purged += 1;
    // The cache entry only says "pending deletion" by now; drop it anyway so nothing of the customer stays.
    await invalidateProfile(env, customer.merchant_id, customer.customer_ref);
  }
  return report;
}
