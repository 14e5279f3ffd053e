import { describe, expect, it } from "vitest";
import {
  binCentreMs,
  chiSquare1Sf,
  erfc,
  histogramMedian,
  median,
  rate,
  relativeLift,
  sampleRatioMismatch,
  timeToPayBin,
  twoSidedP,
  Z_95,
} from "../../src/analytics/stats";

describe("normal and chi-square tails", () => {
  it("matches tabulated values", () => {
    expect(erfc(0)).toBeCloseTo(1, 7);
    expect(twoSidedP(1.959963984540054)).toBeCloseTo(0.05, 6);
    expect(twoSidedP(-1.959963984540054)).toBeCloseTo(0.05, 6);
    expect(twoSidedP(2.5758293035489)).toBeCloseTo(0.01, 6);
    expect(twoSidedP(0)).toBe(1);
    // chi-square 1 df: 3.841459 is the 95 % point, 10.827566 the 99.9 % point.
    expect(chiSquare1Sf(3.841459)).toBeCloseTo(0.05, 6);
    expect(chiSquare1Sf(10.827566)).toBeCloseTo(0.001, 7);
    expect(chiSquare1Sf(0)).toBe(1);
  });

  it("keeps relative accuracy deep in the tail", () => {
    // 2·(1 − Φ(6)) = 1.973175290075e-9
    expect(twoSidedP(6) / 1.973175290075e-9).toBeCloseTo(1, 5);
  });
});

describe("relative lift by the delta method on ln R (Katz interval)", () => {
  it("matches a worked example", () => {
    // Treatment 600 / 1000 = 0.6, holdout 50 / 100 = 0.5. R = 0.6 / 0.5 = 1.2, relative = 0.2.
    // Var(ln R) = (1 − 0.6)/(1000·0.6) + (1 − 0.5)/(100·0.5) = 0.4/600 + 0.5/50
    //           = 0.000666667 + 0.01 = 0.010666667;  SE(ln R) = √0.010666667 = 0.10327956
    // ln R = 0.18232156; ln R ± 1.959964 · 0.10327956 = 0.18232156 ± 0.20242424 → [−0.02010268, 0.38474580]
    // CI = exp(…) − 1 = [−0.01990194, 0.46924074]
    // z = 0.18232156 / 0.10327956 = 1.7653209 → p = 2·(1 − Φ(1.7653209)) = 0.0775099
    const lift = relativeLift(600, 1000, 50, 100);
    expect(lift.relative).toBeCloseTo(0.2, 12);
    expect(lift.ci95![0]).toBeCloseTo(-0.01990194, 7);
    expect(lift.ci95![1]).toBeCloseTo(0.46924074, 7);
    expect(lift.p_value).toBeCloseTo(0.0775099, 6);
  });

  it("is symmetric on the log scale and agrees with the p-value at 5 %", () => {
    for (const [sT, nT, sH, nH] of [[6120, 9012, 640, 988], [2, 10, 6, 10], [30, 50, 20, 50]] as const) {
      const lift = relativeLift(sT, nT, sH, nH);
      const [lo, hi] = lift.ci95!;
      const logR = Math.log(1 + lift.relative!);
      expect(Math.log1p(hi) - logR).toBeCloseTo(logR - Math.log1p(lo), 12);
      const se = (Math.log1p(hi) - logR) / Z_95;
      expect(lift.p_value).toBeCloseTo(twoSidedP(logR / se), 12);
      expect(lo < 0 && hi > 0).toBe(lift.p_value! > 0.05);
    }
  });

  it("never reaches below −1, the lift of a treatment rate of 0 (R − 1 ± 1.96·SE(R) would)", () => {
    // 2 of 10 vs 6 of 10: R = 1/3; Var(ln R) = 0.8/2 + 0.4/6 = 0.4666667, SE = 0.6831301
    // CI = exp(−1.0986123 ± 1.3389101) − 1 = [−0.9126229, 0.2716280] (the symmetric one: [−1.113, −0.220])
    const lift = relativeLift(2, 10, 6, 10);
    expect(lift.ci95![0]).toBeCloseTo(-0.9126229, 6);
    expect(lift.ci95![1]).toBeCloseTo(0.271628, 6);
    expect(lift.p_value).toBeCloseTo(0.1077906, 6);
    for (const [sT, nT, sH, nH] of [[1, 100, 99, 100], [1, 1000, 1, 2], [3, 7, 5, 6]] as const) {
      expect(relativeLift(sT, nT, sH, nH).ci95![0]).toBeGreaterThan(-1);
    }
  });

  it("caps a rate at 1 when an arm has more successes than trials (conversions ahead of their decisions): finite, never NaN", () => {
    const lift = relativeLift(5, 10, 4, 1);
    expect(lift.relative).toBeCloseTo(-0.5, 12);
    expect(lift).toEqual(relativeLift(5, 10, 1, 1));
    for (const v of [...lift.ci95!, lift.p_value!]) expect(Number.isFinite(v)).toBe(true);
    expect(relativeLift(12, 10, 3, 2)).toEqual({ relative: 0, ci95: null, p_value: null });
  });

  it("is null while either arm has no data", () => {
    const none = { relative: null, ci95: null, p_value: null };
    expect(relativeLift(5, 10, 0, 0)).toEqual(none);
    expect(relativeLift(0, 0, 5, 10)).toEqual(none);
    expect(relativeLift(5, 10, 0, 10)).toEqual(none); // holdout rate 0: the ratio is undefined
  });

  it("a treatment rate of 0 has a relative lift of −1 but no interval", () => {
    expect(relativeLift(0, 10, 5, 10)).toEqual({ relative: -1, ci95: null, p_value: null });
  });

  it("both rates 1: no variance to build an interval from, so no interval and no p-value (not a certain 0)", () => {
    expect(relativeLift(1, 1, 1, 1)).toEqual({ relative: 0, ci95: null, p_value: null });
    expect(relativeLift(10, 10, 5, 5)).toEqual({ relative: 0, ci95: null, p_value: null });
  });
});

describe("sample-ratio mismatch", () => {
  it("flags a 50/50 split reported for a 10 % holdout", () => {
    // expected: 20 holdout, 180 treatment; χ² = 80²/20 + 80²/180 = 320 + 35.56 = 355.56 → p ≈ 2.6e-79
    const srm = sampleRatioMismatch(100, 100, 10);
    expect(srm.expected_holdout_share).toBe(0.1);
    expect(srm.observed_holdout_share).toBe(0.5);
    expect(srm.p_value!).toBeLessThan(1e-70);
    expect(srm.warning).toBe(true);
  });

  it("does not flag a split that matches", () => {
    // χ² = 0.1²/9.9 + 0.1²/20.1 = 0.00150761 → p = 0.96903
    const srm = sampleRatioMismatch(20, 10, 33);
    expect(srm.p_value).toBeCloseTo(0.96903, 4);
    expect(srm.warning).toBe(false);
  });

  it("handles empty arms and a 0 % holdout", () => {
    expect(sampleRatioMismatch(0, 0, 10)).toEqual({ expected_holdout_share: 0.1, observed_holdout_share: null, p_value: null, warning: false });
    expect(sampleRatioMismatch(100, 0, 0)).toMatchObject({ p_value: 1, warning: false });
    expect(sampleRatioMismatch(100, 1, 0)).toMatchObject({ p_value: 0, warning: true });
  });
});

describe("medians", () => {
  it("median of a list", () => {
    expect(median([])).toBeNull();
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it("histogram median stays within 0.5 % of the exact median", () => {
    const values = [5000, 10_000, 15_000, 20_000, 30_000, 40_000, 42_000, 50_000, 60_000, 70_000, 80_000, 90_000];
    const bins = new Map<number, number>();
    for (const v of values) bins.set(timeToPayBin(v), (bins.get(timeToPayBin(v)) ?? 0) + 1);
    const exact = median(values)!; // 41 000
    expect(Math.abs(histogramMedian(bins)! - exact) / exact).toBeLessThan(0.005);
    expect(histogramMedian(new Map())).toBeNull();
  });

  it("a middle pair straddling 1 s counts the ≤ 1 s value as 500 ms: off by at most 250 ms + 0.5 % (docs/analytics.md)", () => {
    const binsOf = (values: number[]) => {
      const bins = new Map<number, number>();
      for (const v of values) bins.set(timeToPayBin(v), (bins.get(timeToPayBin(v)) ?? 0) + 1);
      return bins;
    };
    // [1000, 1200] and [0, 1200] fill the same bins, so no rule can give both exact medians (1100, 600).
    expect(histogramMedian(binsOf([1000, 1200]))).toBe(histogramMedian(binsOf([0, 1200])));
    for (const values of [[1000, 1200], [0, 1200], [900, 900, 5000, 5000], [10, 10, 60_000, 60_000]]) {
      const exact = median(values)!;
      const upper = Math.max(...values);
      expect(Math.abs(histogramMedian(binsOf(values))! - exact), values.join()).toBeLessThanOrEqual(250 + 0.005 * upper);
    }
    // Both middle values above 1 s: within 0.5 %.
    const exact = median([1001, 1200])!;
    expect(Math.abs(histogramMedian(binsOf([1001, 1200]))! - exact) / exact).toBeLessThan(0.005);
  });

  it("bins are 1 % wide and their centre lies inside", () => {
    for (const ms of [1001, 5000, 41_000, 3_600_000, 7_776_000_000]) {
      const b = timeToPayBin(ms);
      expect(Math.abs(binCentreMs(b) - ms) / ms).toBeLessThan(0.01);
    }
    expect(timeToPayBin(0)).toBe(0);
    expect(timeToPayBin(1000)).toBe(0);
  });
});

describe("rate", () => {
  it("is null on an empty denominator, not 0", () => {
    expect(rate(0, 0)).toBeNull();
    expect(rate(1, 4)).toBe(0.25);
  });
});
