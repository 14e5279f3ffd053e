import { describe, expect, it } from "vitest";
import { resolveRange } from "../../src/analytics/range";
import { bucketKey, bucketStarts, MAX_STALE_RUNS, planWindow } from "../../src/analytics/timeBuckets";

const T = (s: string) => Date.parse(s);
const HOUR = 3_600_000;

describe("planWindow: rollups for closed buckets, raw rows from the open hour on and for stale closed hours", () => {
  const now = T("2026-02-10T15:42:00Z");

  it("whole closed days from daily rollups, edges from hourly, the open hour raw", () => {
    const plan = planWindow(T("2026-02-03T10:00:00Z"), T("2026-02-10T16:00:00Z"), now, true);
    expect(plan.dailyRollups).toEqual([[T("2026-02-04T00:00:00Z"), T("2026-02-10T00:00:00Z")]]);
    expect(plan.hourlyRollups).toEqual([
      [T("2026-02-03T10:00:00Z"), T("2026-02-04T00:00:00Z")],
      [T("2026-02-10T00:00:00Z"), T("2026-02-10T15:00:00Z")],
    ]);
    expect(plan.raw).toEqual([[T("2026-02-10T15:00:00Z"), T("2026-02-10T16:00:00Z")]]);
  });

  it("never reads raw rows of a closed hour whose rollup is up to date", () => {
    for (const useDaily of [true, false]) {
      const plan = planWindow(T("2026-01-01T00:00:00Z"), T("2026-02-11T00:00:00Z"), now, useDaily);
      expect(plan.raw).toEqual([[T("2026-02-10T15:00:00Z"), T("2026-02-11T00:00:00Z")]]);
    }
  });

  it("reads stale closed hours raw, in runs, and splits the days they fall in; every hour is read exactly once", () => {
    const stale = [T("2026-02-05T07:00:00Z"), T("2026-02-05T08:00:00Z"), T("2026-02-10T14:00:00Z"), T("2026-01-01T00:00:00Z"), T("2026-02-10T15:00:00Z")];
    const from = T("2026-02-03T10:00:00Z");
    const to = T("2026-02-10T16:00:00Z");
    const plan = planWindow(from, to, now, true, stale);
    expect(plan.raw).toEqual([
      [T("2026-02-05T07:00:00Z"), T("2026-02-05T09:00:00Z")],
      [T("2026-02-10T14:00:00Z"), T("2026-02-10T15:00:00Z")],
      [T("2026-02-10T15:00:00Z"), T("2026-02-10T16:00:00Z")],
    ]);
    expect(plan.dailyRollups).toEqual([
      [T("2026-02-04T00:00:00Z"), T("2026-02-05T00:00:00Z")],
      [T("2026-02-06T00:00:00Z"), T("2026-02-10T00:00:00Z")],
    ]);
    // Hour by hour: each hour of [from, to) is covered by exactly one range of the plan.
    const ranges = [...plan.dailyRollups, ...plan.hourlyRollups, ...plan.raw];
    for (let h = from; h < to; h += HOUR) expect(ranges.filter(([a, b]) => a <= h && h < b), new Date(h).toISOString()).toHaveLength(1);
    expect(ranges.every(([a, b]) => a >= from && b <= to && a < b)).toBe(true);
  });

  it("past MAX_STALE_RUNS stale runs, joins the runs nearest each other into one raw range: every stale hour still read raw", () => {
    const from = T("2026-02-01T00:00:00Z");
    const to = T("2026-02-03T00:00:00Z");
    // Stale hours every 2 hours, then two more 5 and 9 hours on: the widest gaps stay splits.
    const dense = Array.from({ length: MAX_STALE_RUNS + 3 }, (_, i) => from + 2 * i * HOUR);
    const stale = [...dense, dense.at(-1)! + 5 * HOUR, dense.at(-1)! + 14 * HOUR, dense.at(-1)! + 16 * HOUR];
    const plan = planWindow(from, to, now, false, stale);
    expect(plan.raw).toHaveLength(MAX_STALE_RUNS);
    expect(plan.raw).toEqual([
      [dense[0]!, dense.at(-1)! + HOUR],
      [dense.at(-1)! + 5 * HOUR, dense.at(-1)! + 6 * HOUR],
      [dense.at(-1)! + 14 * HOUR, dense.at(-1)! + 15 * HOUR],
      [dense.at(-1)! + 16 * HOUR, dense.at(-1)! + 17 * HOUR],
    ]);
    const ranges = [...plan.dailyRollups, ...plan.hourlyRollups, ...plan.raw];
    for (let h = from; h < to; h += HOUR) expect(ranges.filter(([a, b]) => a <= h && h < b), new Date(h).toISOString()).toHaveLength(1);
    for (const h of stale) expect(plan.raw.some(([a, b]) => a <= h && h < b), new Date(h).toISOString()).toBe(true);
  });

  it("a day of stale hours for each of 60 days (a history import): 4 raw ranges, none from a rollup", () => {
    const from = T("2025-12-10T00:00:00Z");
    const stale = Array.from({ length: 60 }, (_, i) => from + i * 24 * HOUR + 12 * HOUR);
    const plan = planWindow(from, now, now, true, stale);
    expect(plan.raw.length).toBeLessThanOrEqual(MAX_STALE_RUNS + 1); // + the open hour
    for (const h of stale) expect(plan.raw.some(([a, b]) => a <= h && h < b), new Date(h).toISOString()).toBe(true);
    expect(plan.dailyRollups.length + plan.hourlyRollups.length).toBeLessThanOrEqual(3 * (MAX_STALE_RUNS + 1));
  });

  it("a window in the past reads rollups only; hourly only when daily is off", () => {
    const plan = planWindow(T("2026-02-01T00:00:00Z"), T("2026-02-03T00:00:00Z"), now, false);
    expect(plan).toEqual({ dailyRollups: [], hourlyRollups: [[T("2026-02-01T00:00:00Z"), T("2026-02-03T00:00:00Z")]], raw: [] });
  });

  it("a window from the open hour on reads raw rows only", () => {
    const plan = planWindow(T("2026-02-10T15:00:00Z"), T("2026-02-10T16:00:00Z"), now, true);
    expect(plan).toEqual({ dailyRollups: [], hourlyRollups: [], raw: [[T("2026-02-10T15:00:00Z"), T("2026-02-10T16:00:00Z")]] });
  });
});

describe("resolveRange", () => {
  const now = T("2026-02-10T15:42:10Z");
  const summary = { align: "hour" as const, maxDays: 90 };

  it("refuses a window whose widened end would leave year 9999 (not an ISO 8601 timestamp any more)", () => {
    const q = { from: "9999-12-30T00:00:00Z", to: "9999-12-31T23:59:59Z" };
    expect(resolveRange(q, now, summary)).toEqual({ ok: false, details: [{ path: "to", message: "must be before the last bucket of year 9999" }] });
    expect(resolveRange({ from: q.from, to: "9999-12-31T22:59:59Z" }, now, summary)).toMatchObject({ ok: true, toMs: T("9999-12-31T23:00:00Z") });
  });

  it("refuses a `to` in year 0000 whose default from (7 days before) falls in year -1, which no timestamp can echo", () => {
    expect(resolveRange({ to: "0000-01-01T00:00:00Z" }, now, summary)).toEqual({ ok: false, details: [{ path: "from", message: "must not be before year 0000 (default: to − 7 days)" }] });
    expect(resolveRange({ to: "0000-01-08T00:00:00Z" }, now, { align: "day", maxDays: 90 })).toEqual({ ok: true, fromMs: T("0000-01-01T00:00:00Z"), toMs: T("0000-01-08T00:00:00Z") });
    expect(resolveRange({ from: "0000-01-01T00:30:00Z", to: "0000-01-02T00:00:00Z" }, now, summary)).toEqual({ ok: true, fromMs: T("0000-01-01T00:00:00Z"), toMs: T("0000-01-02T00:00:00Z") });
  });

  it("defaults to the last 7 days, widened to whole hours", () => {
    expect(resolveRange({}, now, summary)).toEqual({ ok: true, fromMs: T("2026-02-03T15:00:00Z"), toMs: T("2026-02-10T16:00:00Z") });
  });

  it("aligns to days for daily series", () => {
    expect(resolveRange({ from: "2026-02-01T10:00:00Z", to: "2026-02-02T01:00:00Z" }, now, { align: "day", maxDays: 90 })).toEqual({
      ok: true,
      fromMs: T("2026-02-01T00:00:00Z"),
      toMs: T("2026-02-03T00:00:00Z"),
    });
  });

  it("rejects from >= to and windows over the limit", () => {
    expect(resolveRange({ from: "2026-02-11T00:00:00Z" }, now, summary)).toMatchObject({ ok: false, details: [{ path: "from" }] });
    expect(resolveRange({ from: "2026-01-01T00:00:00Z", to: "2026-01-01T00:00:00Z" }, now, summary)).toMatchObject({ ok: false });
    expect(resolveRange({ from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:01Z" }, now, { align: "hour", maxDays: 31 })).toMatchObject({ ok: false, details: [{ path: "to" }] });
    expect(resolveRange({ from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00Z" }, now, { align: "hour", maxDays: 31 })).toMatchObject({ ok: true });
    // Without `to` (now), a from too far back says what `to` was taken to be.
    expect(resolveRange({ from: "2025-11-01T00:00:00Z" }, now, summary)).toEqual({ ok: false, details: [{ path: "to", message: "must be at most 90 days after from (default: now)" }] });
  });

  it("keeps the digits past the millisecond that Timestamp accepts (up to 9), which Date.parse drops", () => {
    // A `to` 100 ns after 15:00 ends after the row stamped 15:00:00.000Z: the hour from 15:00 is covered.
    expect(resolveRange({ from: "2026-02-03T14:10:00Z", to: "2026-02-03T15:00:00.0000001Z" }, now, summary)).toEqual({ ok: true, fromMs: T("2026-02-03T14:00:00Z"), toMs: T("2026-02-03T16:00:00Z") });
    expect(resolveRange({ from: "2026-02-01T10:00:00Z", to: "2026-02-03T00:00:00.000000001Z" }, now, { align: "day", maxDays: 90 })).toMatchObject({ ok: true, toMs: T("2026-02-04T00:00:00Z") });
    expect(resolveRange({ from: "2026-02-03T14:10:00Z", to: "2026-02-03T15:00:00.000000Z" }, now, summary)).toMatchObject({ ok: true, toMs: T("2026-02-03T15:00:00Z") });
    // from rounds down as before: 14:59:59.9999999 is in the hour from 14:00.
    expect(resolveRange({ from: "2026-02-03T14:59:59.9999999Z", to: "2026-02-03T15:00:00Z" }, now, summary)).toEqual({ ok: true, fromMs: T("2026-02-03T14:00:00Z"), toMs: T("2026-02-03T15:00:00Z") });
    // Two bounds inside one millisecond are a window when from < to, and refused otherwise.
    expect(resolveRange({ from: "2026-02-03T15:00:00.0000001Z", to: "2026-02-03T15:00:00.0000002Z" }, now, summary)).toEqual({ ok: true, fromMs: T("2026-02-03T15:00:00Z"), toMs: T("2026-02-03T16:00:00Z") });
    expect(resolveRange({ from: "2026-02-03T15:00:00.0000002Z", to: "2026-02-03T15:00:00.0000002Z" }, now, summary)).toMatchObject({ ok: false, details: [{ path: "from", message: "must be before to" }] });
    expect(resolveRange({ from: "2026-02-03T15:00:00.0000002Z", to: "2026-02-03T15:00:00.0000001Z" }, now, summary)).toMatchObject({ ok: false, details: [{ path: "from" }] });
    // The limit to the nanosecond: 31 days exactly passes, 100 ns more is refused.
    const hourly = { align: "hour" as const, maxDays: 31 };
    expect(resolveRange({ from: "2026-01-01T00:00:00.0000001Z", to: "2026-02-01T00:00:00.0000001Z" }, now, hourly)).toMatchObject({ ok: true, toMs: T("2026-02-01T01:00:00Z") });
    expect(resolveRange({ from: "2026-01-01T00:00:00.0000001Z", to: "2026-02-01T00:00:00.0000002Z" }, now, hourly)).toMatchObject({ ok: false, details: [{ path: "to" }] });
    expect(resolveRange({ from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00.0000001Z" }, now, hourly)).toMatchObject({ ok: false, details: [{ path: "to" }] });
  });
});

describe("buckets", () => {
  it("bucket keys and starts", () => {
    expect(bucketKey(T("2026-02-03T15:30:00.123Z"))).toBe("2026-02-03T15:00:00Z");
    expect(bucketStarts(T("2026-02-03T22:00:00Z"), T("2026-02-04T01:00:00Z"), "hour")).toEqual([0, 1, 2].map((h) => T("2026-02-03T22:00:00Z") + h * HOUR));
    expect(bucketStarts(T("2026-02-03T00:00:00Z"), T("2026-02-03T00:00:00Z"), "day")).toEqual([]);
  });
});
