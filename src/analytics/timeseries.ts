import type { TimeseriesMetric, TimeseriesResponse } from "../schemas/analytics";
import type { FactRow } from "./facts";
import { rate } from "./stats";
import { bucketKey, bucketStarts, dayOfBucket, type Grain } from "./timeBuckets";

type Arm = "treatment" | "holdout";
const isArm = (a: unknown): a is Arm => a === "treatment" || a === "holdout";

interface Cell {
  decisions: number;
  conversions: number;
  top1: number;
  amountN: number;
  amountSum: number;
}
const emptyCell = (): Cell => ({ decisions: 0, conversions: 0, top1: 0, amountN: 0, amountSum: 0 });

function value(metric: TimeseriesMetric, c: Cell): number | null {
  switch (metric) {
    case "decisions":
      return c.decisions;
    case "conversions":
      return c.conversions;
    case "conversion_rate":
      return rate(c.conversions, c.decisions);
    case "top1_rate":
      return rate(c.top1, c.conversions);
    case "aov":
      return c.amountN > 0 ? Math.round(c.amountSum / c.amountN) : null;
  }
}

/**
 * One point per bucket of [from, to), oldest first, empty buckets included (counts 0, rates null).
 * Pure: fact rows in (hour or day buckets), points out. `currency` filters AOV (never mixes currencies).
 */
export function buildTimeseries(
  q: { metric: TimeseriesMetric; granularity: Grain; fromMs: number; toMs: number; currency?: string },
  facts: { decisions: FactRow[]; conversions: FactRow[] },
): TimeseriesResponse["points"] {
  const cells = new Map<string, Record<Arm, Cell>>();
  const keyOf = (bucket: string) => (q.granularity === "day" ? dayOfBucket(bucket) : bucket);
  const cell = (bucket: string, arm: Arm) => {
    const key = keyOf(bucket);
    let c = cells.get(key);
    if (!c) cells.set(key, (c = { treatment: emptyCell(), holdout: emptyCell() }));
    return c[arm];
  };
  for (const r of facts.decisions) if (isArm(r.arm)) cell(r.bucket, r.arm).decisions += Number(r.decisions);
  for (const r of facts.conversions) {
    if (!isArm(r.arm)) continue;
    const c = cell(r.bucket, r.arm);
    const n = Number(r.conversions);
    c.conversions += n;
    if (Number(r.rank) === 1) c.top1 += n;
    if (q.currency !== undefined && r.currency === q.currency) {
      c.amountN += Number(r.amount_n);
      c.amountSum += Number(r.amount_sum);
    }
  }
  return bucketStarts(q.fromMs, q.toMs, q.granularity).map((start) => {
    const c = cells.get(bucketKey(start)) ?? { treatment: emptyCell(), holdout: emptyCell() };
    return { t: bucketKey(start), treatment: value(q.metric, c.treatment), holdout: value(q.metric, c.holdout) };
  });
}
