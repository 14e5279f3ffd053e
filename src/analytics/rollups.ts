import { dirtyMerchants, type Fact, FACT_LIST } from "./facts";
import { rawHorizonMs } from "./retention";
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
  const sums = fact.measures.map((m) => `sum(${m})`).join(", ");
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
 * One hour behind the raw horizon, because the consumers store nothing before the raw-retention
 * cutoff at their clock (src/storage/events.ts, src/analytics/store.ts): a row stored at time t lands
 * in an hour that passes the raw horizon at the next hour boundary at the earliest, and the rollup run
 * then still rebuilds it, before any retention deletes it (with the raw horizon itself, one accepted at
 * 10:59 in the hour then 90 days back was dropped unbuilt at 11:00). The extra hour is never rebuilt
 * from part of its rows: retention drops its marks before deleting it (RETENTION_RULES), and nothing
 * is stored in it after.
 */
export const finalBeforeMs = (nowMs: number) => rawHorizonMs(nowMs) - HOUR_MS;

/** Drops dirty marks of hours before `beforeMs` (finalBeforeMs): their raw rows may be past retention, and rebuilding them would erase their numbers. */
export async function dropStaleDirtyHours(db: D1Database, beforeMs: number): Promise<number> {
  const r = await db.prepare("DELETE FROM analytics_dirty_hours WHERE hour < ?1").bind(bucketKey(beforeMs)).run();
  return r.meta.changes ?? 0;
}
