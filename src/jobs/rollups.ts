import { closedDirtyHours, dropStaleDirtyHours, recomputeDayStatements } from "../analytics/rollups";
import { floorTo } from "../analytics/timeBuckets";
import { RAW_ANALYTICS_DAYS } from "../analytics/retention";
import type { Env } from "../env";

/** Hours rebuilt per run: 11 statements each keeps a run well under D1's queries-per-invocation limit. */
const MAX_HOURS_PER_RUN = 48;

export interface RollupReport {
  hours: number;
  days: number;
  stale_dropped: number;
  /** More dirty hours wait for the next run. */
  unfinished: boolean;
}

/**
 * Every 5 minutes (cron "*\/5 * * * *"): rebuilds the hourly rollups of every closed hour that got
 * new raw rows (late conversions included) and the daily rollups of their days, one D1 batch per
 * merchant and day. `now` is the cron's scheduled time.
 */
export async function runAnalyticsRollups(env: Pick<Env, "DB">, now: Date): Promise<RollupReport> {
  const nowMs = now.getTime();
  const staleDropped = await dropStaleDirtyHours(env.DB, floorTo(nowMs - RAW_ANALYTICS_DAYS * 24 * 3600 * 1000, "hour"));
  const dirty = await closedDirtyHours(env.DB, floorTo(nowMs, "hour"), MAX_HOURS_PER_RUN);

  const groups = new Map<string, { merchantId: string; dayMs: number; hours: number[] }>();
  for (const d of dirty) {
    const hourMs = Date.parse(d.hour);
    const dayMs = floorTo(hourMs, "day");
    const key = `${d.merchant_id}\u0000${dayMs}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { merchantId: d.merchant_id, dayMs, hours: [] }));
    g.hours.push(hourMs);
  }
  for (const g of groups.values()) {
    await env.DB.batch(recomputeDayStatements(env.DB, g.merchantId, g.dayMs, g.hours));
  }
  const report: RollupReport = { hours: dirty.length, days: groups.size, stale_dropped: staleDropped, unfinished: dirty.length >= MAX_HOURS_PER_RUN };
  console.log(JSON.stringify({ timestamp: new Date().toISOString(), level: "info", job: "analytics_rollups", at: now.toISOString(), ...report }));
  return report;
}
