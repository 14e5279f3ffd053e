import { applyAnalyticsRetention } from "../analytics/retention";
import type { Env } from "../env";
import { errorText, logEvent } from "../log";
import { D1_QUERIES_PER_INVOCATION, QueryBudget } from "./budget";
import { type PurgeReport, purgeDueCustomers } from "./purge";
import { applyRawRetention } from "./rawRetention";
import { type RollupReport, runAnalyticsRollups } from "./rollups";
import { applyRetention, type RetentionReport } from "./retention";

/** The crons of wrangler*.toml [triggers]. */
export const DATA_LIFECYCLE_CRON = "17 3 * * *";
/** Analytics rollups, the purge of customers whose grace period has passed, the raw rows' retention. */
export const ANALYTICS_ROLLUP_CRON = "*/5 * * * *";

/**
 * D1 queries each job of an invocation may spend (src/jobs/budget.ts: 1,000 per invocation, every
 * query a job makes is charged; the shares leave a margin). The rollups' share must hold
 * ROLLUP_MIN_BUDGET (src/jobs/rollups.ts) or a full dirty day could never be rebuilt.
 */
export const QUERY_SHARES = {
  daily: { optimize: 1, purge: 540, retention: 200, analytics_retention: 170 },
  frequent: { rollups: 600, purge: 250, raw_retention: 100 },
} as const;

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
      return runFrequentJobs(env, now);
    default:
      logEvent("unknown cron, nothing run", { job: "scheduled", cron: controller.cron });
  }
}

/**
 * Daily: refresh the query planner's statistics, purge customers past their grace period, then apply
 * the retention windows (customer data, then analytics), within one invocation's D1 budget.
 */
export async function runDataLifecycle(env: Env, now: Date): Promise<void> {
  const budget = new QueryBudget(D1_QUERIES_PER_INVOCATION);
  const share = QUERY_SHARES.daily;
  await runSteps(now, [
    ["optimize", () => optimizeQueryPlans(env.DB, budget.share(share.optimize))],
    ["purge", () => purgeDueCustomers(env, now, { budget: budget.share(share.purge) })],
    ["retention", () => applyRetention(env, now, { budget: budget.share(share.retention) })],
    ["analytics_retention", async () => ({ deleted: await applyAnalyticsRetention(env.DB, now, { budget: budget.share(share.analytics_retention) }) })],
  ]);
}

/**
 * Every 5 minutes: rebuild the analytics rollups, then purge the customers whose grace period has
 * passed since (so an erasure is done within minutes of `purge_after`, not at the next daily run),
 * then delete the raw rows past 90 days (traffic makes more of them a day than one daily run could).
 */
export async function runFrequentJobs(env: Env, now: Date): Promise<void> {
  const budget = new QueryBudget(D1_QUERIES_PER_INVOCATION);
  const share = QUERY_SHARES.frequent;
  await runSteps(now, [
    ["analytics_rollups", () => runAnalyticsRollups(env, now, { budget: budget.share(share.rollups) })],
    ["purge", () => purgeDueCustomers(env, now, { budget: budget.share(share.purge) })],
    ["raw_retention", () => applyRawRetention(env, now, { budget: budget.share(share.raw_retention) })],
  ]);
}

/** What a step reports: its fields of the `scheduled job done` line (src/log.ts EVENT_LINES lists every one, or this does not compile). */
type JobReport = PurgeReport | RetentionReport | RollupReport | Awaited<ReturnType<typeof optimizeQueryPlans>> | { deleted: Record<string, number> };

/** Runs each step, logging one JSON line each; one failing step does not starve the others, and the run still fails visibly at the end. */
async function runSteps(now: Date, steps: [job: string, step: () => Promise<JobReport>][]): Promise<void> {
  const failures: unknown[] = [];
  for (const [job, step] of steps) {
    const started = Date.now();
    try {
      const report = await step();
      logEvent("scheduled job done", { job, at: now.toISOString(), duration_ms: Date.now() - started, ...report });
    } catch (err) {
      failures.push(err);
      logEvent("scheduled job failed", { job, at: now.toISOString(), error: errorText(err) });
    }
  }
  if (failures.length > 0) throw new AggregateError(failures, "scheduled job failed");
}

/**
 * `PRAGMA optimize` (ANALYZE where statistics are missing or stale, bounded by SQLite), as D1
 * recommends. Without statistics SQLite prefers a WITHOUT ROWID table's primary-key prefix over a
 * better secondary index: the per-customer purge and export of analytics rows then read every row of
 * the merchant instead of the customer's (test/api/queryPlans.test.ts).
 */
export async function optimizeQueryPlans(db: D1Database, budget: QueryBudget): Promise<{ skipped?: true }> {
  if (!budget.take(1)) return { skipped: true };
  await db.prepare("PRAGMA optimize").run();
  return {};
}
