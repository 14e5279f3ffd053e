import { applyAnalyticsRetention } from "../analytics/retention";
import type { Env } from "../env";
import { purgeDueCustomers } from "./purge";
import { runAnalyticsRollups } from "./rollups";
import { applyRetention } from "./retention";

/** The crons of wrangler*.toml [triggers]. */
export const DATA_LIFECYCLE_CRON = "17 3 * * *";
export const ANALYTICS_ROLLUP_CRON = "*/5 * * * *";

/**
 * Cron entry point. `controller.scheduledTime` is the clock of every job, so a test (or a replay)
 * can run the jobs "30 days later" with createScheduledController({ scheduledTime, cron }).
 */
export async function runScheduled(controller: ScheduledController, env: Env, _ctx: ExecutionContext): Promise<void> {
  const now = new Date(controller.scheduledTime);
  switch (controller.cron) {
    case DATA_LIFECYCLE_CRON:
      return runDataLifecycle(env, now);
    case ANALYTICS_ROLLUP_CRON:
      await runAnalyticsRollups(env, now);
      return;
    default:
      console.warn(JSON.stringify({ level: "warn", job: "scheduled", message: "unknown cron, nothing run", cron: controller.cron }));
  }
}

/**
 * Daily: refresh the query planner's statistics, purge customers past their grace period, then apply
 * the retention windows (customer data, then analytics).
 */
export async function runDataLifecycle(env: Env, now: Date): Promise<void> {
  const failures: unknown[] = [];
  // One failing step must not starve the other; the run still fails visibly at the end.
  for (const [job, step] of [
    ["optimize", () => optimizeQueryPlans(env.DB)],
    ["purge", () => purgeDueCustomers(env, now)],
    ["retention", () => applyRetention(env, now)],
    ["analytics_retention", async () => ({ deleted: await applyAnalyticsRetention(env.DB, now) })],
  ] as const) {
    const started = Date.now();
    try {
      const report = await step();
      console.log(JSON.stringify({ level: "info", job, at: now.toISOString(), duration_ms: Date.now() - started, ...report }));
    } catch (err) {
      failures.push(err);
      console.error(JSON.stringify({ level: "error", job, at: now.toISOString(), error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }));
    }
  }
  if (failures.length > 0) throw new AggregateError(failures, "data lifecycle job failed");
}

/**
 * `PRAGMA optimize` (ANALYZE where statistics are missing or stale, bounded by SQLite), as D1
 * recommends. Without statistics SQLite prefers a WITHOUT ROWID table's primary-key prefix over a
 * better secondary index: the per-customer purge and export of analytics rows then read every row of
 * the merchant instead of the customer's (test/api/queryPlans.test.ts).
 */
export async function optimizeQueryPlans(db: D1Database): Promise<Record<string, never>> {
  await db.prepare("PRAGMA optimize").run();
  return {};
}
