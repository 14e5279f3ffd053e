import type { ErrorDetail } from "../errors";
import { ceilTo, DAY_MS, floorTo, type Grain } from "./timeBuckets";

export const DEFAULT_RANGE_DAYS = 7;
export const MAX_RANGE_DAYS = 90;
export const MAX_HOURLY_RANGE_DAYS = 31;

/**
 * A validated Timestamp (up to 9 fractional digits) as the millisecond it falls in (Date.parse keeps
 * three digits and drops the rest) and the nanoseconds past it (0–999,999), so no digit sent is lost:
 * `from` 15:00:00.0000001Z is before `to` 15:00:00.0000002Z, and a `to` of 15:00:00.0000001Z covers
 * the row stamped 15:00:00.000Z (stored timestamps have milliseconds), hence the hour from 15:00.
 */
function instant(ts: string): { ms: number; ns: number } {
  const digits = /\.(\d+)Z$/.exec(ts)?.[1] ?? "";
  return { ms: Date.parse(ts), ns: Number(digits.padEnd(9, "0").slice(3, 9)) };
}

export type RangeResult = { ok: true; fromMs: number; toMs: number } | { ok: false; details: ErrorDetail[] };

/**
 * The report window of API.md §6: default the last 7 days; from < to; at most 90 days apart (31 for
 * hourly points). Analytics has bucket resolution, so the window is widened to whole buckets
 * (from rounded down, to rounded up); the response echoes the window it covers. The limit is on
 * the window asked, as API.md bounds `from` and `to`: the last 90 days up to now is a valid request
 * at any time of day, and refusing it because its rounded-out window is longer would refuse what
 * the contract allows. So the covered window may be one bucket longer than the limit (91 daily
 * points, 745 hourly, a summary of 90 days and an hour). Pure.
 */
export function resolveRange(q: { from?: string; to?: string }, nowMs: number, opts: { align: Grain; maxDays: number }): RangeResult {
  const to = q.to !== undefined ? instant(q.to) : { ms: nowMs, ns: 0 };
  const from = q.from !== undefined ? instant(q.from) : { ms: to.ms - DEFAULT_RANGE_DAYS * DAY_MS, ns: to.ns };
  const fromMs = from.ms;
  const toMs = to.ms;
  if (fromMs > toMs || (fromMs === toMs && from.ns >= to.ns)) return { ok: false, details: [{ path: "from", message: q.to === undefined ? "must be before to (default: now)" : "must be before to" }] };
  const overLimitMs = toMs - fromMs - opts.maxDays * DAY_MS;
  if (overLimitMs > 0 || (overLimitMs === 0 && to.ns > from.ns)) {
    // Not sent, `to` is now: say so, or the 400 names a parameter the client never gave.
    return { ok: false, details: [{ path: "to", message: `must be at most ${opts.maxDays} days after from${q.to === undefined ? " (default: now)" : ""}` }] };
  }
  const widenedFrom = floorTo(fromMs, opts.align);
  // The default from (to − 7 days) of a `to` in year 0000 falls in year −1: echoed, "-000001-12-25…" is no ISO 8601 timestamp either.
  if (new Date(widenedFrom).getUTCFullYear() < 0) {
    return { ok: false, details: [{ path: "from", message: q.from === undefined ? `must not be before year 0000 (default: to − ${DEFAULT_RANGE_DAYS} days)` : "must not be before year 0000" }] };
  }
  // A `to` past its millisecond (…:00.0000001Z) ends after that millisecond, so its rows are in the window.
  const widenedTo = ceilTo(to.ns > 0 ? toMs + 1 : toMs, opts.align);
  // Widened past 9999-12-31 the echoed `to` would not be an ISO 8601 timestamp ("+010000-01-01…").
  if (new Date(widenedTo).getUTCFullYear() > 9999) return { ok: false, details: [{ path: "to", message: "must be before the last bucket of year 9999" }] };
  return { ok: true, fromMs: widenedFrom, toMs: widenedTo };
}
