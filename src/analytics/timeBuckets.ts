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

/** Where a window's numbers come from: rollups of closed days, of closed hours, and raw rows from the open hour on. */
export interface WindowPlan {
  dailyRollups: [number, number] | null;
  hourlyRollups: [number, number][];
  raw: [number, number] | null;
}

/**
 * Splits [from, to) (aligned to hours) at the open hour (the hour of `now`): before it, whole days
 * from daily rollups (when allowed) and the other hours from hourly rollups; from it on, raw rows —
 * never more raw rows than the open hour's (plus any stamped a few minutes ahead).
 */
export function planWindow(fromMs: number, toMs: number, nowMs: number, useDaily: boolean): WindowPlan {
  const open = floorTo(nowMs, "hour");
  const closedEnd = Math.min(toMs, open);
  const plan: WindowPlan = { dailyRollups: null, hourlyRollups: [], raw: toMs > open ? [Math.max(fromMs, open), toMs] : null };
  if (closedEnd <= fromMs) return plan;
  const dayStart = ceilTo(fromMs, "day");
  const dayEnd = floorTo(closedEnd, "day");
  if (useDaily && dayEnd > dayStart) {
    plan.dailyRollups = [dayStart, dayEnd];
    if (dayStart > fromMs) plan.hourlyRollups.push([fromMs, dayStart]);
    if (closedEnd > dayEnd) plan.hourlyRollups.push([dayEnd, closedEnd]);
  } else {
    plan.hourlyRollups.push([fromMs, closedEnd]);
  }
  return plan;
}
