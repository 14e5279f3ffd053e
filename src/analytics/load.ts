import { type Fact, type FactName, type FactRow, FACTS, oneMerchant } from "./facts";
import { rollupHorizonMs } from "./retention";
import { finalBeforeMs } from "./rollups";
import { bucketKey, floorTo, hourPrefix, planWindow } from "./timeBuckets";

/**
 * Reads facts of one merchant over [from, to) (hour-aligned epoch ms): closed hours and days from
 * the rollups, the open hour — and closed hours whose rollups are stale (dirty marks the 5-minute
 * rollup job has not cleared yet) — from raw rows through the same aggregate the rollups are built
 * with, so an answer counts every decision and conversion stored before it (API.md §6). All fact
 * queries of one call run in one D1 batch (one consistent snapshot), after one primary-key read of
 * the merchant's dirty marks that plans them. The batch reads those marks again: when an hour turned
 * dirty in between (a row stored in a rolled-up hour, whose rollup then lacks it), the window is
 * planned and read again on the batch's marks, up to PLAN_ATTEMPTS reads in all, so the answer is
 * the snapshot of one batch. (An hour that turned clean in between is right either way: it is read
 * raw, which its fresh rollup agrees with.)
 */
export async function loadFacts(
  db: D1Database,
  merchantId: string,
  fromMs: number,
  toMs: number,
  nowMs: number,
  names: FactName[],
  opts: { useDaily: boolean },
): Promise<Record<FactName, FactRow[]>> {
  // A dirty hour that is final (finalBeforeMs) is read from its rollup, as the rollup job leaves it:
  // its raw rows may be gone.
  const marks = staleHoursStatement(db, merchantId, Math.max(fromMs, finalBeforeMs(nowMs)), Math.min(toMs, floorTo(nowMs, "hour")));
  let stale = marks ? hoursOf((await marks.all<{ hour: string }>()).results) : [];
  const window: WindowRead = { db, merchantId, fromMs, toMs, nowMs, names, opts };
  for (let attempt = 1; ; attempt++) {
    const read = await readPlanned(window, stale, marks);
    if (read.turnedDirty.length === 0 || attempt >= PLAN_ATTEMPTS) return read.facts;
    stale = read.stale;
  }
}

/** loadFacts' arguments: what one read of the window needs besides its plan's dirty hours. */
interface WindowRead {
  db: D1Database;
  merchantId: string;
  fromMs: number;
  toMs: number;
  nowMs: number;
  names: FactName[];
  opts: { useDaily: boolean };
}

/** Reads of a window in all (the first on the marks read before, the others on a batch's own). */
const PLAN_ATTEMPTS = 3;

/**
 * One read of the window as planned on `stale`: the facts, in one batch that ends with the dirty
 * marks again (`marks`), and the hours those name that the plan read from rollups, not raw
 * (`turnedDirty`).
 */
async function readPlanned(
  window: WindowRead,
  stale: number[],
  marks: D1PreparedStatement | null,
): Promise<{ facts: Record<FactName, FactRow[]>; stale: number[]; turnedDirty: number[] }> {
  const { db, merchantId, fromMs, toMs, nowMs, names, opts } = window;
  const plan = planWindow(fromMs, toMs, nowMs, opts.useDaily, stale, rollupHorizonMs(nowMs));
  const ranges: { grain: "h" | "d"; from: string; to: string }[] = [
    ...plan.dailyRollups.map(([a, b]) => ({ grain: "d" as const, from: bucketKey(a), to: bucketKey(b) })),
    ...plan.hourlyRollups.map(([a, b]) => ({ grain: "h" as const, from: bucketKey(a), to: bucketKey(b) })),
  ];

  const statements: D1PreparedStatement[] = [];
  const owners: FactName[] = [];
  for (const name of names) {
    const fact = FACTS[name];
    for (let i = 0; i < ranges.length; i += D1_COMPOUND_SELECT_TERMS) {
      statements.push(rollupQuery(db, fact, merchantId, ranges.slice(i, i + D1_COMPOUND_SELECT_TERMS)));
      owners.push(name);
    }
    for (const [a, b] of plan.raw) {
      const columns = ["bucket", ...fact.dims, ...fact.measures].join(", ");
      statements.push(db.prepare(`SELECT ${columns} FROM (${fact.aggregate(oneMerchant)})`).bind(merchantId, hourPrefix(a), hourPrefix(b)));
      owners.push(name);
    }
  }
  const out = Object.fromEntries(names.map((n) => [n, [] as FactRow[]])) as Record<FactName, FactRow[]>;
  if (statements.length === 0) return { facts: out, stale, turnedDirty: [] };
  const results = await db.batch<FactRow>(marks ? [...statements, marks] : statements);
  results.slice(0, statements.length).forEach((r, i) => out[owners[i]!].push(...r.results));
  const now = marks ? hoursOf(results[statements.length]!.results as unknown as { hour: string }[]) : [];
  return { facts: out, stale: now, turnedDirty: now.filter((h) => !plan.raw.some(([a, b]) => h >= a && h < b)) };
}

/**
 * The read of the closed hours in [from, closedEnd) with a dirty mark of the merchant (its primary
 * key); null when the range holds no closed hour.
 */
function staleHoursStatement(db: D1Database, merchantId: string, fromMs: number, closedEndMs: number): D1PreparedStatement | null {
  if (closedEndMs <= fromMs) return null;
  return db.prepare("SELECT hour FROM analytics_dirty_hours WHERE merchant_id = ?1 AND hour >= ?2 AND hour < ?3").bind(merchantId, bucketKey(fromMs), bucketKey(closedEndMs));
}

const hoursOf = (rows: { hour: string }[]) => rows.map((r) => Date.parse(r.hour));

/** D1 refuses a compound SELECT of more than 5 terms ("too many terms in compound SELECT"). */
const D1_COMPOUND_SELECT_TERMS = 5;

/**
 * One primary-key range search per (grain, range), joined with UNION ALL: an OR of the ranges would
 * make SQLite read every rollup row of the merchant (25 months of hours) on each call.
 */
function rollupQuery(db: D1Database, fact: Fact, merchantId: string, ranges: { grain: "h" | "d"; from: string; to: string }[]): D1PreparedStatement {
  const binds: string[] = [merchantId];
  const columns = ["bucket", ...fact.dims, ...fact.measures].join(", ");
  const selects = ranges.map((r) => {
    binds.push(r.grain, r.from, r.to);
    const n = binds.length;
    return `SELECT ${columns} FROM ${fact.table} WHERE merchant_id = ?1 AND grain = ?${n - 2} AND bucket >= ?${n - 1} AND bucket < ?${n}`;
  });
  return db.prepare(selects.join(" UNION ALL ")).bind(...binds);
}
