import { acceptCutoffMs, RAW_DAYS, rawHorizonMs } from "../analytics/horizons";
import type { Env } from "../env";
import { applyRetentionChunk, RETENTION_RULES, retentionChunkQueries, type RetentionRule } from "../storage/deletions";
import { QueryBudget } from "./budget";

/**
 * Retention windows (API.md §3): raw usage events (and dead letters, migration 0007) 90 days; a customer's profile (preferences and
 * the method_stats aggregates) 18 months after last use; proof (consent log, purge tombstones,
 * data-rights audit) 3 years. A row is removed once it is strictly older than its window (raw
 * events: than the raw horizon, src/analytics/horizons.ts).
 */
export const RAW_EVENTS_DAYS = RAW_DAYS;
export const PROFILE_MONTHS = 18;
export const LEGAL_PROOF_MONTHS = 36;

/** `now` minus whole calendar months, clamped to the last day of a shorter month (Aug 31 − 6 months = Feb 28/29). */
export function monthsBefore(now: Date, months: number): Date {
  const d = new Date(now.getTime());
  const day = d.getUTCDate();
  d.setUTCDate(1);
  d.setUTCMonth(d.getUTCMonth() - months);
  const lastDay = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
  d.setUTCDate(Math.min(day, lastDay));
  return d;
}

/**
 * The raw horizon, like the raw analytics rows' (src/analytics/horizons.ts): payment rollups are
 * rebuilt hour by hour from these rows, so an hour that can still get a late payment keeps all of them.
 */
export const rawEventsCutoff = (now: Date) => new Date(rawHorizonMs(now.getTime())).toISOString();

/**
 * What the consumers still store, at their clock (src/analytics/horizons.ts): a raw row dated before
 * this is dropped as expired. An hour later than any cutoff a retention run can have used meanwhile,
 * so a redelivery or a re-driven letter never inserts anew a row retention deleted.
 */
export const acceptCutoff = (now: Date) => new Date(acceptCutoffMs(now.getTime())).toISOString();

export function retentionCutoffs(now: Date): Record<RetentionRule["window"], string> {
  return {
    raw_events: rawEventsCutoff(now),
    profile: monthsBefore(now, PROFILE_MONTHS).toISOString(),
    legal_proof: monthsBefore(now, LEGAL_PROOF_MONTHS).toISOString(),
  };
}

export interface RetentionOptions {
  /** Rows per statement. */
  chunk?: number;
  /** Statements per rule per run; the rest waits for the next run. */
  maxRounds?: number;
  rules?: RetentionRule[];
  /** D1 queries this run may spend (src/jobs/budget.ts); rules it does not reach are unfinished. */
  budget?: QueryBudget;
}

/** Rows deleted per rule, and the rules that reached their bound (more left for the next run). */
export interface RetentionReport {
  deleted: Record<string, number>;
  unfinished: string[];
}

export async function applyRetention(env: Pick<Env, "DB">, now: Date, opts: RetentionOptions = {}): Promise<RetentionReport> {
  const { chunk = 500, maxRounds = 20, rules = RETENTION_RULES } = opts;
  const budget = opts.budget ?? new QueryBudget(rules.reduce((n, rule) => n + retentionChunkQueries(rule), 0) * maxRounds);
  const cutoffs = retentionCutoffs(now);
  const report: RetentionReport = { deleted: {}, unfinished: [] };
  for (const rule of rules) {
    let total = 0;
    let last = chunk;
    for (let round = 0; round < maxRounds && last >= chunk && budget.take(retentionChunkQueries(rule)); round++) {
      last = await applyRetentionChunk(env.DB, rule, cutoffs[rule.window], chunk, now.toISOString());
      total += last;
    }
    report.deleted[rule.name] = total;
    if (last >= chunk) report.unfinished.push(rule.name);
  }
  return report;
}
