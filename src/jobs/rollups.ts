import { closedDirtyHours, dropStaleDirtyHours, recomputeDayStatements } from "../analytics/rollups";
import { floorTo } from "../analytics/timeBuckets";
import { RAW_ANALYTICS_DAYS } from "../analytics/retention";
import type { Env } from "../env";

/** Dirty hours read per round, and D1 statements per run (D1 caps queries per invocation). */
const HOURS_PER_ROUND = 48;
const STATEMENT_BUDGET = 900;

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
 * merchant and day, oldest first, until nothing is dirty or the statement budget is spent.
 * `now` is the cron's scheduled time.
 */
export async function runAnalyticsRollups(env: Pick<Env, "DB">, now: Date, opts: { statementBudget?: number } = {}): Promise<RollupReport> {
  const nowMs = now.getTime();
  const budget = opts.statementBudget ?? STATEMENT_BUDGET;
  const report: RollupReport = { hours: 0, days: 0, stale_dropped: 0, unfinished: false };
  report.stale_dropped = await dropStaleDirtyHours(env.DB, floorTo(nowMs - RAW_ANALYTICS_DAYS * 24 * 3600 * 1000, "hour"));
  let spent = 0;
  for (;;) {
    const dirty = await closedDirtyHours(env.DB, floorTo(nowMs, "hour"), HOURS_PER_ROUND);
    if (dirty.length === 0) break;
    for (const g of groupByMerchantDay(dirty)) {
      const statements = recomputeDayStatements(env.DB, g.merchantId, g.dayMs, g.hours);
      if (spent > 0 && spent + statements.length > budget) {
        report.unfinished = true;
        break;
      }
      await env.DB.batch(statements);
      spent += statements.length;
      report.hours += g.hours.length;
      report.days += 1;
    }
    if (report.unfinished || dirty.length < HOURS_PER_ROUND) break;
  }
  console.log(JSON.stringify({ timestamp: new Date().toISOString(), level: "info", job: "analytics_rollups", at: now.toISOString(), statements: spent, ...report }));
  return report;
}

function groupByMerchantDay(dirty: { merchant_id: string; hour: string }[]): { merchantId: string; dayMs: number; hours: number[] }[] {
  const groups = new Map<string, { merchantId: string; dayMs: number; hours: number[] }>();
  for (const d of dirty) {
    const hourMs = Date.parse(d.hour);
    const dayMs = floorTo(hourMs, "day");
    const key = `${d.merchant_id}\u0000${dayMs}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { merchantId: d.merchant_id, dayMs, hours: [] }));
    g.hours.push(hourMs);
  }
  return [...groups.values()];
}
