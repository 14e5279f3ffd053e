/**
 * The statistics of the experiment report (API.md §6). Pure: values in, values out.
 */

/** A share with a null for an empty denominator (API.md: rates are null, not 0). */
export function rate(numerator: number, denominator: number): number | null {
  return denominator > 0 ? numerator / denominator : null;
}

/**
 * Complementary error function (Numerical Recipes' erfcc, Chebyshev fit): fractional error below
 * 1.2e-7 everywhere, so small tail probabilities keep their relative accuracy.
 */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z - 1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** P(|Z| ≥ |z|) for a standard normal Z. */
export function twoSidedP(z: number): number {
  return Math.min(1, erfc(Math.abs(z) / Math.SQRT2));
}

/** P(X ≥ x) for X chi-square with one degree of freedom (X = Z²). */
export function chiSquare1Sf(x: number): number {
  if (x <= 0) return 1;
  return Math.min(1, erfc(Math.sqrt(x / 2)));
}

export const Z_95 = 1.959963984540054;

export interface Lift {
  relative: number | null;
  ci95: [number, number] | null;
  p_value: number | null;
}

const NO_LIFT: Lift = { relative: null, ci95: null, p_value: null };

/**
 * Relative lift of two proportions, R − 1 with R = p_t / p_h, and its 95 % interval by the delta
 * method on ln R (Katz): SE(ln R) = √((1 − p_t)/(n_t p_t) + (1 − p_h)/(n_h p_h)), interval
 * exp(ln R ± z·SE) − 1, so it never leaves (−1, ∞) as R − 1 ± z·SE(R) would for a small R. The
 * two-sided p-value tests ln R = 0 with the same SE (Wald), so the interval excludes 0 exactly when
 * p < 0.05. Null while either arm has no trials or the holdout has no successes (R undefined); the
 * interval and p-value are null when the treatment rate is 0 (ln R undefined) or both rates are 1
 * (SE 0: the method has no width to give, not a certainty).
 *
 * A decision converts at most once, so more successes than trials means conversions whose decisions
 * are not stored (yet: the two queues race, or lost): a rate is capped at 1, never above, where the
 * variance term would turn negative and the interval NaN.
 */
export function relativeLift(successT: number, trialsT: number, successH: number, trialsH: number): Lift {
  if (trialsT <= 0 || trialsH <= 0 || successH <= 0) return NO_LIFT;
  const pT = Math.min(1, successT / trialsT);
  const pH = Math.min(1, successH / trialsH);
  const ratio = pT / pH;
  const relative = ratio - 1;
  if (pT === 0) return { relative, ci95: null, p_value: null };
  const se = Math.sqrt((1 - pT) / (trialsT * pT) + (1 - pH) / (trialsH * pH));
  if (se === 0) return { relative, ci95: null, p_value: null };
  const logRatio = Math.log(ratio);
  return { relative, ci95: [Math.expm1(logRatio - Z_95 * se), Math.expm1(logRatio + Z_95 * se)], p_value: twoSidedP(logRatio / se) };
}

export interface Srm {
  expected_holdout_share: number;
  observed_holdout_share: number | null;
  p_value: number | null;
  warning: boolean;
}

/** Sample-ratio mismatch: Pearson chi-square (1 df) of holdout vs treatment counts against the configured split. */
export function sampleRatioMismatch(treatment: number, holdout: number, holdoutPercent: number): Srm {
  const expectedShare = holdoutPercent / 100;
  const n = treatment + holdout;
  if (n === 0) return { expected_holdout_share: expectedShare, observed_holdout_share: null, p_value: null, warning: false };
  const expH = n * expectedShare;
  const expT = n - expH;
  let chi2 = 0;
  for (const [observed, expected] of [[holdout, expH], [treatment, expT]] as const) {
    if (expected > 0) chi2 += (observed - expected) ** 2 / expected;
    else if (observed > 0) chi2 = Infinity; // e.g. holdout decisions while holdout_percent is 0
  }
  const p = chi2 === Infinity ? 0 : chiSquare1Sf(chi2);
  return { expected_holdout_share: expectedShare, observed_holdout_share: holdout / n, p_value: p, warning: p < 0.001 };
}

/** Median of a list (mean of the middle two for an even count); null for an empty list. */
export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Time to pay is kept as a histogram of log-scale bins (1 % wide) so medians merge across hourly
 * and daily rollups: bin 0 holds ≤ 1 s, bin b ≥ 1 holds [1000·1.01^(b−1), 1000·1.01^b) ms.
 * The median of a histogram is its middle bin's geometric centre (the mean of the two middle ones
 * for an even count): within 0.5 % of the exact value when every middle value is above 1 s. Bin 0
 * counts as 500 ms, so a middle pair straddling 1 s is off by up to 250 ms more; no rule on bins can
 * do better, as the ≤ 1 s value may be anything from 0 to 1,000 ms (and no checkout is paid that fast).
 */
const BIN_BASE = 1.01;
const BIN_LOG = Math.log(BIN_BASE);

export function timeToPayBin(ms: number): number {
  if (ms <= 1000) return 0;
  return 1 + Math.floor(Math.log(ms / 1000) / BIN_LOG);
}

export function binCentreMs(bin: number): number {
  if (bin <= 0) return 500;
  return 1000 * Math.exp((bin - 0.5) * BIN_LOG);
}

/** Median of a binned distribution (bin → count), in whole ms; null when empty. */
export function histogramMedian(bins: Map<number, number>): number | null {
  const entries = [...bins.entries()].filter(([, n]) => n > 0).sort((a, b) => a[0] - b[0]);
  const total = entries.reduce((s, [, n]) => s + n, 0);
  if (total === 0) return null;
  // Lower and upper middle element (1-based ranks), averaged for an even total, as median() does.
  const lo = Math.floor((total + 1) / 2);
  const hi = Math.floor(total / 2) + 1;
  const at = (rank: number) => {
    let seen = 0;
    for (const [bin, n] of entries) {
      seen += n;
      if (seen >= rank) return binCentreMs(bin);
    }
    return binCentreMs(entries[entries.length - 1]![0]);
  };
  return Math.round((at(lo) + at(hi)) / 2);
}
