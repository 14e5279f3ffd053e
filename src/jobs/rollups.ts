import { closedDirtyHours, type DirtyHour, dropStaleDirtyHours, finalBeforeMs, recomputeDayStatementCount, recomputeDayStatements } from "../analytics/rollups";
import { floorTo } from "../analytics/timeBuckets";
import type { Env } from "../env";
import { QueryBudget } from "./budget";

/** Dirty hours read per round. */
const HOURS_PER_ROUND = 48;
/** The most queries one run needs to make progress: the stale-mark delete, one read, the largest day (24 hours). */
export const ROLLUP_MIN_BUDGET = 2 + recomputeDayStatementCount(24);

export interface RollupReport {
  /** Distinct hours rebuilt (each for every merchant dirty on it). */
  hours: number;
  /** Dirty marks cleared: (merchant, hour) pairs rebuilt. */
  merchant_hours: number;
  /** Distinct days rebuilt from their hours. */
  days: number;
  stale_dropped: number;
  /** More dirty hours wait for the next run. */
  unfinished: boolean;
  /** D1 statements the rebuilds took. */
  statements: number;
}

/**
 * Every 5 minutes (cron "*\/5 * * * *"): rebuilds the hourly rollups of every closed hour that got
 * new raw rows (late conversions included) and the daily rollups of their days, for all merchants
 * dirty on them at once: one D1 batch per day, oldest first, until nothing is dirty or the query
 * budget is spent (a day that does not fit waits for the next run; a budget of ROLLUP_MIN_BUDGET
 * always fits one). Statements grow with dirty hours (≤ 251 per day), not with active merchants.
 * `now` is the cron's scheduled time.
 */
export async function runAnalyticsRollups(env: Pick<Env, "DB">, now: Date, opts: { budget?: QueryBudget } = {}): Promise<RollupReport> {
  const nowMs = now.getTime();
  const budget = opts.budget ?? new QueryBudget(600);
  const report: RollupReport = { hours: 0, merchant_hours: 0, days: 0, stale_dropped: 0, unfinished: false, statements: 0 };
  if (!budget.take(1)) return { ...report, unfinished: true };
  report.stale_dropped = await dropStaleDirtyHours(env.DB, finalBeforeMs(nowMs));
  for (;;) {
    if (!budget.take(1)) {
      report.unfinished = true;
      break;
    }
    const dirty = await closedDirtyHours(env.DB, floorTo(nowMs, "hour"), HOURS_PER_ROUND);
    if (dirty.length === 0) break;
    for (const day of groupByDay(dirty)) {
      const statements = recomputeDayStatements(env.DB, day.dayMs, day.hours);
      if (!budget.take(statements.length)) {
        report.unfinished = true;
        break;
      }
      await env.DB.batch(statements);
      report.statements += statements.length;
      report.hours += day.hours.length;
      report.merchant_hours += day.merchantHours;
      report.days += 1;
    }
    if (report.unfinished || dirty.length < HOURS_PER_ROUND) break;
  }
  return report;
}

function groupByDay(dirty: DirtyHour[]): { dayMs: number; hours: number[]; merchantHours: number }[] {
  const days = new Map<number, { dayMs: number; hours: number[]; merchantHours: number }>();
  for (const d of dirty) {
    const hourMs = Date.parse(d.hour);
    const dayMs = floorTo(hourMs, "day");
    let g = days.get(dayMs);
    if (!g) days.set(dayMs, (g = { dayMs, hours: [], merchantHours: 0 }));
    g.hours.push(hourMs);
    g.merchantHours += d.merchants;
  }
  return [...days.values()];
}
