import { dirtyMerchants, type Fact, FACT_LIST } from "./facts";
import { rawHorizonMs } from "./horizons";
import { bucketKey, DAY_MS, HOUR_MS, hourPrefix } from "./timeBuckets";

/**
 * Rollup recomputation. A bucket is rebuilt in full (DELETE + INSERT ... SELECT of the complete
 * aggregate), never incremented, so running it twice gives the same rows, and a late conversion
 * simply marks its decision's hour dirty again (migration 0005 triggers).
 *
 * Set-based: one statement pair per fact rebuilds an hour for EVERY merchant with a dirty mark on
 * it, so a run's D1 statement count grows with the number of dirty hours, not of active merchants.
 */

/** Merchants with a dirty mark on any hour of the JSON array ?2. */
const DIRTY_IN_HOURS = "SELECT merchant_id FROM analytics_dirty_hours WHERE hour IN (SELECT value FROM json_each(?2))";

function hourStatements(db: D1Database, fact: Fact, hourMs: number): D1PreparedStatement[] {
  const cols = [...fact.dims, ...fact.measures].join(", ");
  return [
    db
      .prepare(`DELETE FROM ${fact.table} WHERE grain = 'h' AND bucket = ?1 AND merchant_id IN (SELECT merchant_id FROM analytics_dirty_hours WHERE hour = ?1)`)
      .bind(bucketKey(hourMs)),
    db
      .prepare(`INSERT INTO ${fact.table} (merchant_id, grain, bucket, ${cols}) SELECT merchant_id, 'h', bucket, ${cols} FROM (${fact.aggregate(dirtyMerchants)}) WHERE true`)
      .bind(bucketKey(hourMs), hourPrefix(hourMs), hourPrefix(hourMs + HOUR_MS)),
  ];
}

function dayStatements(db: D1Database, fact: Fact, dayMs: number, hoursJson: string): D1PreparedStatement[] {
  const dims = fact.dims.join(", ");
  // total(), not sum(): a day's amount_sum may pass 2^63 where no hour of it does (facts.ts, conversions).
  const sums = fact.measures.map((m) => `total(${m})`).join(", ");
  return [
    db.prepare(`DELETE FROM ${fact.table} WHERE grain = 'd' AND bucket = ?1 AND merchant_id IN (${DIRTY_IN_HOURS})`).bind(bucketKey(dayMs), hoursJson),
    db
      .prepare(
        `INSERT INTO ${fact.table} (merchant_id, grain, bucket, ${dims}, ${fact.measures.join(", ")})
         SELECT merchant_id, 'd', ?1, ${dims}, ${sums} FROM ${fact.table}
         WHERE merchant_id IN (${DIRTY_IN_HOURS}) AND grain = 'h' AND bucket >= ?1 AND bucket < ?3
         GROUP BY merchant_id, ${dims}`,
      )
      .bind(bucketKey(dayMs), hoursJson, bucketKey(dayMs + DAY_MS)),
  ];
}

/**
 * One transaction for the given hours of one day (all merchants dirty on them): each hour rebuilt,
 * then the day rebuilt from its hourly rows for those merchants, then the hours' dirty marks cleared.
 * D1 runs a batch atomically, so a raw insert either lands before it (and is counted) or after it
 * (and marks the hour dirty again). recomputeDayStatementCount(hours) statements.
 */
export function recomputeDayStatements(db: D1Database, dayMs: number, hoursMs: number[]): D1PreparedStatement[] {
  const hoursJson = JSON.stringify(hoursMs.map(bucketKey));
  const out: D1PreparedStatement[] = [];
  for (const hour of hoursMs) for (const fact of FACT_LIST) out.push(...hourStatements(db, fact, hour));
  for (const fact of FACT_LIST) out.push(...dayStatements(db, fact, dayMs, hoursJson));
  out.push(db.prepare("DELETE FROM analytics_dirty_hours WHERE hour IN (SELECT value FROM json_each(?1))").bind(hoursJson));
  return out;
}

/** Statements of recomputeDayStatements for `hours` hours: each fact's delete and insert per hour and for the day, and the mark clear. */
export function recomputeDayStatementCount(hours: number): number {
  return 1 + 2 * FACT_LIST.length * (hours + 1);
}

export interface DirtyHour {
  hour: string;
  /** Merchants with a dirty mark on it. */
  merchants: number;
}

/** Closed dirty hours, oldest first, with how many merchants each (the open hour stays dirty until it closes). */
export async function closedDirtyHours(db: D1Database, openHourMs: number, limit: number): Promise<DirtyHour[]> {
  const { results } = await db
    .prepare("SELECT hour, count(*) AS merchants FROM analytics_dirty_hours WHERE hour < ?1 GROUP BY hour ORDER BY hour LIMIT ?2")
    .bind(bucketKey(openHourMs), limit)
    .all<DirtyHour>();
  return results;
}

/**
 * Hours before this are final: their dirty marks are dropped unbuilt and reads take their rollups.
 * It is the raw horizon, which retention deletes up to, one hour behind what the consumers still
 * store (src/analytics/horizons.ts): a row stored at time t lands in an hour that becomes final two
 * hour boundaries later at the earliest, so the 5-minute rollups rebuild it first, and no row lands
 * in a final hour afterwards, even from a batch that read its clock before a boundary and commits
 * after it. Retention drops the marks of the hours it deletes before deleting them (RETENTION_RULES).
 */
export const finalBeforeMs = (nowMs: number) => rawHorizonMs(nowMs);

/** Drops dirty marks of hours before `beforeMs` (finalBeforeMs): their raw rows may be past retention, and rebuilding them would erase their numbers. */
export async function dropStaleDirtyHours(db: D1Database, beforeMs: number): Promise<number> {
  const r = await db.prepare("DELETE FROM analytics_dirty_hours WHERE hour < ?1").bind(bucketKey(beforeMs)).run();
  return r.meta.changes ?? 0;
}
