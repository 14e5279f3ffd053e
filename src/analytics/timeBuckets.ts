/** Hour and day buckets of the analytics report (UTC). Pure. */

export const HOUR_MS = 3600 * 1000;
export const DAY_MS = 24 * HOUR_MS;

export type Grain = "hour" | "day";

const stepOf = (grain: Grain) => (grain === "hour" ? HOUR_MS : DAY_MS);

export const floorTo = (ms: number, grain: Grain) => Math.floor(ms / stepOf(grain)) * stepOf(grain);
export const ceilTo = (ms: number, grain: Grain) => Math.ceil(ms / stepOf(grain)) * stepOf(grain);

/** A bucket's key, e.g. "2026-02-03T15:00:00Z" (the format of the rollup tables' `bucket`). */
export function bucketKey(ms: number): string {
  return new Date(ms).toISOString().slice(0, 13) + ":00:00Z";
}

/** The hour prefix that bounds raw timestamps: "2026-02-03T15" (see migration 0005). */
export function hourPrefix(ms: number): string {
  return new Date(ms).toISOString().slice(0, 13);
}

/** The day an hour bucket key belongs to. */
export function dayOfBucket(key: string): string {
  return key.slice(0, 10) + "T00:00:00Z";
}

/** Every bucket start in [from, to), oldest first. */
export function bucketStarts(fromMs: number, toMs: number, grain: Grain): number[] {
  const out: number[] = [];
  for (let t = floorTo(fromMs, grain); t < toMs; t += stepOf(grain)) out.push(t);
  return out;
}

/**
 * Where a window's numbers come from: rollups of closed days and hours, raw rows of the open hour on
 * and of closed hours whose rollups are stale (a dirty mark the rollup job has not cleared yet).
 */
export interface WindowPlan {
  dailyRollups: [number, number][];
  hourlyRollups: [number, number][];
  raw: [number, number][];
}

/**
 * Raw ranges for the closed stale hours at most: past it, runs are joined across the shortest gaps,
 * whose hours are then read raw too, so a read's statements stay bounded however many hours are stale.
 */
export const MAX_STALE_RUNS = 4;

/**
 * Splits [from, to) (aligned to hours) at the open hour (the hour of `now`): from it on, raw rows —
 * never more raw rows than the open hour's (plus any stamped a few minutes ahead). Before it, the
 * closed hours in `staleHours` (hour starts whose rollups are out of date: a decision or a late
 * conversion the 5-minute rollup job has not folded in yet) are read raw too, in runs of adjacent
 * hours; past MAX_STALE_RUNS runs, the runs nearest each other are joined into one raw range with
 * the up-to-date hours between them. Their rollups were built from those raw rows, so the two agree
 * (but for a customer erased since: the purge keeps rollups, as a rebuilt hour does not). Everything
 * else comes from the rollups: whole days from daily rollups (when allowed), the other hours from
 * hourly ones. A day that starts before `dailyFromMs` (the rollup horizon: retention has deleted
 * its daily row and its older hours) is read from its hourly rollups, so a window over it counts
 * the hours still kept.
 */
export function planWindow(fromMs: number, toMs: number, nowMs: number, useDaily: boolean, staleHours: readonly number[] = [], dailyFromMs = -Infinity): WindowPlan {
  const open = floorTo(nowMs, "hour");
  const closedEnd = Math.min(toMs, open);
  const plan: WindowPlan = { dailyRollups: [], hourlyRollups: [], raw: [] };
  const staleRuns = joinNearest(runsOf(staleHours.filter((h) => h >= fromMs && h < closedEnd)), MAX_STALE_RUNS);
  plan.raw.push(...staleRuns);
  if (toMs > open) plan.raw.push([Math.max(fromMs, open), toMs]);
  // The closed part of the window minus the stale runs, from rollups.
  let start = fromMs;
  for (const [a, b] of [...staleRuns, [closedEnd, closedEnd] as [number, number]]) {
    if (a > start) rollupSegment(plan, start, a, useDaily, dailyFromMs);
    start = Math.max(start, b);
  }
  return plan;
}

/** Adjacent hour starts joined into [start, end) runs, oldest first. */
function runsOf(hours: readonly number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (const h of [...new Set(hours)].sort((a, b) => a - b)) {
    const last = runs.at(-1);
    if (last && last[1] === h) last[1] = h + HOUR_MS;
    else runs.push([h, h + HOUR_MS]);
  }
  return runs;
}

/**
 * At most `max` ranges covering every run: split at the max − 1 widest gaps (ties: the newer gap),
 * joined across the others, which reads the fewest extra hours any `max` ranges can.
 */
function joinNearest(runs: [number, number][], max: number): [number, number][] {
  if (runs.length <= max) return runs;
  const gaps = runs.slice(1).map((r, i) => ({ at: i + 1, width: r[0] - runs[i]![1] }));
  const splits = new Set(gaps.sort((a, b) => b.width - a.width || b.at - a.at).slice(0, max - 1).map((g) => g.at));
  const out: [number, number][] = [[...runs[0]!]];
  for (let i = 1; i < runs.length; i++) {
    if (splits.has(i)) out.push([...runs[i]!]);
    else out[out.length - 1]![1] = runs[i]![1];
  }
  return out;
}

/** Daily rollups for the whole days in [from, to) that start at or after `dailyFromMs`; hourly ones for the rest. */
function rollupSegment(plan: WindowPlan, fromMs: number, toMs: number, useDaily: boolean, dailyFromMs: number): void {
  const dayStart = ceilTo(Math.max(fromMs, dailyFromMs), "day");
  const dayEnd = floorTo(toMs, "day");
  if (useDaily && dayEnd > dayStart) {
    if (dayStart > fromMs) plan.hourlyRollups.push([fromMs, dayStart]);
    plan.dailyRollups.push([dayStart, dayEnd]);
    if (toMs > dayEnd) plan.hourlyRollups.push([dayEnd, toMs]);
  } else {
    plan.hourlyRollups.push([fromMs, toMs]);
  }
}
