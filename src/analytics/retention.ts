import { QueryBudget } from "../jobs/budget";
import { monthsBefore } from "../jobs/retention";
import { RAW_DAYS, rawHorizonMs } from "./horizons";
import { floorTo } from "./timeBuckets";

/** API.md §6: raw decisions (and the other raw analytics rows) 90 days, like usage events; rollups 25 months. */
export const RAW_ANALYTICS_DAYS = RAW_DAYS;
export const ROLLUP_MONTHS = 25;

/** Raw rows go, hour by hour, once their hour is before the raw horizon (src/analytics/horizons.ts). */
export { rawHorizonMs };

/** The start of the oldest hour whose rollups are kept (25 calendar months back, hour-aligned). */
export const rollupHorizonMs = (nowMs: number) => floorTo(monthsBefore(new Date(nowMs), ROLLUP_MONTHS).getTime(), "hour");

const RAW_RULES = [
  { table: "analytics_decisions", time: "decided_at", key: "merchant_id, decision_key" },
  // Read under its decision's hour and its payment's: kept while either is (migration 0020).
  { table: "analytics_conversions", time: "max(decided_at, occurred_at)", key: "merchant_id, decision_key" },
  { table: "analytics_offer_impressions", time: "shown_at", key: "merchant_id, impression_id, offer_id" },
] as const;

const rawCutoffAt = (now: Date) => new Date(rawHorizonMs(now.getTime())).toISOString();

const rawRetentionStatement = (db: D1Database, r: (typeof RAW_RULES)[number], cutoff: string, chunk: number) =>
  db.prepare(`DELETE FROM ${r.table} WHERE (${r.key}) IN (SELECT ${r.key} FROM ${r.table} WHERE ${r.time} < ?1 LIMIT ?2)`).bind(cutoff, chunk);

export type RawAnalyticsTable = (typeof RAW_RULES)[number]["table"];
export const RAW_ANALYTICS_TABLES: RawAnalyticsTable[] = RAW_RULES.map((r) => r.table);

/** Deletes up to `chunk` of the table's raw rows past the raw horizon at `now`; rows deleted. */
export async function deleteExpiredRawChunk(db: D1Database, table: RawAnalyticsTable, now: Date, chunk: number): Promise<number> {
  const rule = RAW_RULES.find((r) => r.table === table)!;
  const result = await rawRetentionStatement(db, rule, rawCutoffAt(now), chunk).run();
  return result.meta.changes ?? 0;
}

const ROLLUP_TABLES = [
  "analytics_decision_rollups",
  "analytics_conversion_rollups",
  "analytics_ttp_rollups",
  "analytics_payment_rollups",
  "analytics_offer_rollups",
] as const;

/**
 * The daily retention deletes of analytics, each bounded (`chunk` raw rows, or `chunk` rollup
 * buckets); run the list again until nothing is deleted. A row goes once it is older than its
 * window's horizon (above); a rollup bucket once it starts before the rollup horizon (a daily one
 * that straddles it goes too: reads of that day use its hourly rows, src/analytics/load.ts). The
 * raw rows also go every 5 minutes (deleteExpiredRawChunk, src/jobs/rawRetention.ts).
 */
export function analyticsRetentionStatements(db: D1Database, now: Date, chunk = 500): D1PreparedStatement[] {
  const rawCutoff = rawCutoffAt(now);
  const rollupCutoff = new Date(rollupHorizonMs(now.getTime())).toISOString().slice(0, 13) + ":00:00Z";
  return [
    ...RAW_RULES.map((r) => rawRetentionStatement(db, r, rawCutoff, chunk)),
    // Whole buckets go (up to `chunk` buckets per statement) once they started before the cutoff hour.
    ...ROLLUP_TABLES.map((t) =>
      db
        .prepare(`DELETE FROM ${t} WHERE (merchant_id, grain, bucket) IN (SELECT DISTINCT merchant_id, grain, bucket FROM ${t} WHERE bucket < ?1 LIMIT ?2)`)
        .bind(rollupCutoff, chunk),
    ),
  ];
}

/** Runs the retention deletes until done, `maxRounds` or the query budget; rows deleted per table. */
export async function applyAnalyticsRetention(
  db: D1Database,
  now: Date,
  opts: { chunk?: number; maxRounds?: number; budget?: QueryBudget } = {},
): Promise<Record<string, number>> {
  const names = [...RAW_RULES.map((r) => r.table), ...ROLLUP_TABLES];
  const { chunk = 500, maxRounds = 20, budget = new QueryBudget(names.length * maxRounds) } = opts;
  const deleted: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  for (let round = 0; round < maxRounds && budget.take(names.length); round++) {
    const results = await db.batch(analyticsRetentionStatements(db, now, chunk));
    results.forEach((r, i) => (deleted[names[i]!]! += r.meta.changes ?? 0));
    if (results.every((r) => (r.meta.changes ?? 0) === 0)) break;
  }
  return deleted;
}
