import { deleteExpiredRawChunk, RAW_ANALYTICS_TABLES } from "../analytics/retention";
import type { Env } from "../env";
import { applyRetentionChunk, RETENTION_RULES, retentionChunkQueries } from "../storage/deletions";
import { QueryBudget } from "./budget";
import { retentionCutoffs, type RetentionReport } from "./retention";

/** A table whose rows grow with traffic and go after 90 days, deleted a bounded chunk at a time. */
interface RawTable {
  name: string;
  /** D1 queries one chunk costs. */
  queries: number;
  deleteChunk(): Promise<number>;
}

/**
 * The raw rows (usage events and dead letters, src/jobs/retention.ts; the raw analytics facts,
 * src/analytics/retention.ts), the ones traffic makes by the hundred thousand a day. The same
 * windows as the daily job, applied the same way (so a run overlapping it deletes nothing twice).
 */
function rawTables(env: Pick<Env, "DB">, now: Date, chunk: number): RawTable[] {
  const cutoff = retentionCutoffs(now).raw_events;
  return [
    ...RETENTION_RULES.filter((rule) => rule.window === "raw_events").map((rule) => ({
      name: rule.name,
      queries: retentionChunkQueries(rule),
      deleteChunk: () => applyRetentionChunk(env.DB, rule, cutoff, chunk, now.toISOString()),
    })),
    ...RAW_ANALYTICS_TABLES.map((table) => ({ name: table, queries: 1, deleteChunk: () => deleteExpiredRawChunk(env.DB, table, now, chunk) })),
  ];
}

/**
 * Every 5 minutes (the daily job alone deletes at most ~10,000 rows a table a day): a chunk of
 * each raw table per round, again for the tables whose chunk came back full, until none is or the
 * query budget is spent. Round-robin, so one table's backlog does not starve the others; the
 * tables it did not finish are `unfinished` and continue 5 minutes later.
 */
export async function applyRawRetention(env: Pick<Env, "DB">, now: Date, opts: { chunk?: number; budget?: QueryBudget } = {}): Promise<RetentionReport> {
  const { chunk = 500, budget = new QueryBudget(100) } = opts;
  const report: RetentionReport = { deleted: {}, unfinished: [] };
  let active = rawTables(env, now, chunk);
  for (const t of active) report.deleted[t.name] = 0;
  while (active.length > 0) {
    const full: RawTable[] = [];
    for (const t of active) {
      if (!budget.take(t.queries)) {
        report.unfinished.push(t.name);
        continue;
      }
      const deleted = await t.deleteChunk();
      report.deleted[t.name]! += deleted;
      if (deleted >= chunk) full.push(t);
    }
    active = full;
  }
  return report;
}
