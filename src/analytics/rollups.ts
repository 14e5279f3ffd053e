import { type Fact, FACT_LIST } from "./facts";
import { bucketKey, DAY_MS, HOUR_MS, hourPrefix } from "./timeBuckets";

/**
 * Rollup recomputation. A bucket is rebuilt in full (DELETE + INSERT ... SELECT of the complete
 * aggregate), never incremented, so running it twice gives the same rows, and a late conversion
 * simply marks its decision's hour dirty again (migration 0005 triggers).
 */

function hourStatements(db: D1Database, fact: Fact, merchantId: string, hourMs: number): D1PreparedStatement[] {
  const cols = [...fact.dims, ...fact.measures].join(", ");
  return [
    db.prepare(`DELETE FROM ${fact.table} WHERE merchant_id = ?1 AND grain = 'h' AND bucket = ?2`).bind(merchantId, bucketKey(hourMs)),
    db
      .prepare(`INSERT INTO ${fact.table} (merchant_id, grain, bucket, ${cols}) SELECT ?1, 'h', bucket, ${cols} FROM (${fact.aggregate}) WHERE true`)
      .bind(merchantId, hourPrefix(hourMs), hourPrefix(hourMs + HOUR_MS)),
  ];
}

function dayStatements(db: D1Database, fact: Fact, merchantId: string, dayMs: number): D1PreparedStatement[] {
  const dims = fact.dims.join(", ");
  const sums = fact.measures.map((m) => `sum(${m})`).join(", ");
  return [
    db.prepare(`DELETE FROM ${fact.table} WHERE merchant_id = ?1 AND grain = 'd' AND bucket = ?2`).bind(merchantId, bucketKey(dayMs)),
    db
      .prepare(
        `INSERT INTO ${fact.table} (merchant_id, grain, bucket, ${dims}, ${fact.measures.join(", ")})
         SELECT ?1, 'd', ?2, ${dims}, ${sums} FROM ${fact.table}
         WHERE merchant_id = ?1 AND grain = 'h' AND bucket >= ?2 AND bucket < ?3
         GROUP BY ${dims}`,
      )
      .bind(merchantId, bucketKey(dayMs), bucketKey(dayMs + DAY_MS)),
  ];
}

/**
 * One transaction for one merchant and day: the given hours rebuilt, their dirty marks cleared,
 * then the day rebuilt from its hourly rows. D1 runs a batch atomically, so a raw insert either
 * lands before it (and is counted) or after it (and marks the hour dirty again).
 */
export function recomputeDayStatements(db: D1Database, merchantId: string, dayMs: number, hoursMs: number[]): D1PreparedStatement[] {
  const out: D1PreparedStatement[] = [];
  for (const hour of hoursMs) {
    for (const fact of FACT_LIST) out.push(...hourStatements(db, fact, merchantId, hour));
    out.push(db.prepare("DELETE FROM analytics_dirty_hours WHERE merchant_id = ?1 AND hour = ?2").bind(merchantId, bucketKey(hour)));
  }
  for (const fact of FACT_LIST) out.push(...dayStatements(db, fact, merchantId, dayMs));
  return out;
}

export interface DirtyHour {
  merchant_id: string;
  hour: string;
}

/** Closed dirty hours, oldest first (the open hour stays dirty until it closes). */
export async function closedDirtyHours(db: D1Database, openHourMs: number, limit: number): Promise<DirtyHour[]> {
  const { results } = await db
    .prepare("SELECT merchant_id, hour FROM analytics_dirty_hours WHERE hour < ?1 ORDER BY hour LIMIT ?2")
    .bind(bucketKey(openHourMs), limit)
    .all<DirtyHour>();
  return results;
}

/** Drops dirty marks of hours whose raw rows are past retention: rebuilding them would erase their numbers. */
export async function dropStaleDirtyHours(db: D1Database, beforeMs: number): Promise<number> {
  const r = await db.prepare("DELETE FROM analytics_dirty_hours WHERE hour < ?1").bind(bucketKey(beforeMs)).run();
  return r.meta.changes ?? 0;
}
