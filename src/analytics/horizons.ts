import { floorTo, HOUR_MS } from "./timeBuckets";

/** API.md §3 and §6: raw rows (payments, dead letters, decisions, conversions, impressions) are kept 90 days. */
export const RAW_DAYS = 90;

/**
 * The consumers store no raw row dated before this, at their own clock: the start of the hour 90
 * days back, less one hour. The API accepts what is at most 90 days old at receipt, so only a
 * delivery that waited on a queue for more than an hour (retries, a re-driven dead letter) meets it;
 * an hour-aligned cutoff with no margin dropped a payment accepted at 10:59:59 and delivered at 11:00:01.
 */
export const acceptCutoffMs = (nowMs: number) => floorTo(nowMs - RAW_DAYS * 24 * 3600 * 1000, "hour") - HOUR_MS;

/**
 * Retention deletes raw rows dated before this, and hours before it are final (their dirty marks
 * are dropped unbuilt, reads take their rollups): one hour behind the accept cutoff. A consumer
 * whose batch read its clock before an hour boundary and commits after it (a Worker clock, not D1's
 * commit order, decides what it stores) stores nothing before the previous hour's accept cutoff,
 * which is this horizon after the boundary: so it never writes into an hour retention has deleted,
 * and a row it stores lands in an hour that stays open, rebuilt by the next rollups, for at least
 * another hour. Raw rows are so kept up to two hours more than 90 days.
 */
export const rawHorizonMs = (nowMs: number) => acceptCutoffMs(nowMs) - HOUR_MS;
