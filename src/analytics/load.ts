import { type Fact, type FactName, type FactRow, FACTS, oneMerchant } from "./facts";
import { bucketKey, hourPrefix, planWindow } from "./timeBuckets";

/**
 * Reads facts of one merchant over [from, to) (hour-aligned epoch ms): closed hours and days from
 * the rollups, the open hour from raw rows through the same aggregate the rollups were built with.
 * All queries of one call run in one D1 batch (one consistent snapshot).
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
  const plan = planWindow(fromMs, toMs, nowMs, opts.useDaily);
  const ranges: { grain: "h" | "d"; from: string; to: string }[] = [
    ...(plan.dailyRollups ? [{ grain: "d" as const, from: bucketKey(plan.dailyRollups[0]), to: bucketKey(plan.dailyRollups[1]) }] : []),
    ...plan.hourlyRollups.map(([a, b]) => ({ grain: "h" as const, from: bucketKey(a), to: bucketKey(b) })),
  ];

  const statements: D1PreparedStatement[] = [];
  const owners: FactName[] = [];
  for (const name of names) {
    const fact = FACTS[name];
    if (ranges.length > 0) {
      statements.push(rollupQuery(db, fact, merchantId, ranges));
      owners.push(name);
    }
    if (plan.raw) {
      const columns = ["bucket", ...fact.dims, ...fact.measures].join(", ");
      statements.push(db.prepare(`SELECT ${columns} FROM (${fact.aggregate(oneMerchant)})`).bind(merchantId, hourPrefix(plan.raw[0]), hourPrefix(plan.raw[1])));
      owners.push(name);
    }
  }
  const out = Object.fromEntries(names.map((n) => [n, [] as FactRow[]])) as Record<FactName, FactRow[]>;
  if (statements.length === 0) return out;
  const results = await db.batch<FactRow>(statements);
  results.forEach((r, i) => out[owners[i]!].push(...r.results));
  return out;
}

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
