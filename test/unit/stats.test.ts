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

describe("relative lift by the delta method on the ratio", () => {
  it("matches a worked example", () => {
    // Treatment 600 / 1000 = 0.6, holdout 50 / 100 = 0.5. R = 0.6 / 0.5 = 1.2, relative = 0.2.
    // Var(R)/R² = (1 − 0.6)/(1000·0.6) + (1 − 0.5)/(100·0.5) = 0.4/600 + 0.5/50
    //           = 0.000666667 + 0.01 = 0.010666667;  SE(R) = 1.2 · √0.010666667 = 1.2 · 0.10327956 = 0.12393547
    // CI = 0.2 ± 1.959964 · 0.12393547 = 0.2 ± 0.24290905 → [−0.04290905, 0.44290905]
    // z = 0.2 / 0.12393547 = 1.6137431 → p = 2·(1 − Φ(1.6137431)) = 0.1065832
    const lift = relativeLift(600, 1000, 50, 100);
    expect(lift.relative).toBeCloseTo(0.2, 12);
    expect(lift.ci95![0]).toBeCloseTo(-0.04290905, 7);
    expect(lift.ci95![1]).toBeCloseTo(0.44290905, 7);
    expect(lift.p_value).toBeCloseTo(0.1065832, 6);
  });

  it("is symmetric around the point estimate and agrees with the p-value at 5 %", () => {
    const lift = relativeLift(6120, 9012, 640, 988);
    const [lo, hi] = lift.ci95!;
    expect(hi - lift.relative!).toBeCloseTo(lift.relative! - lo, 12);
    const se = (hi - lift.relative!) / Z_95;
    expect(lift.p_value).toBeCloseTo(twoSidedP(lift.relative! / se), 12);
    expect(lo < 0).toBe(lift.p_value! > 0.05);
  });

  it("caps a rate at 1 when an arm has more successes than trials (conversions ahead of their decisions): finite, never NaN", () => {
    const lift = relativeLift(5, 10, 4, 1);
    expect(lift.relative).toBeCloseTo(-0.5, 12);
    expect(lift).toEqual(relativeLift(5, 10, 1, 1));
    for (const v of [...lift.ci95!, lift.p_value!]) expect(Number.isFinite(v)).toBe(true);
    expect(relativeLift(12, 10, 3, 2)).toEqual({ relative: 0, ci95: [0, 0], p_value: 1 });
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

  it("identical certain rates: no variance, no difference", () => {
    expect(relativeLift(10, 10, 5, 5)).toEqual({ relative: 0, ci95: [0, 0], p_value: 1 });
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
