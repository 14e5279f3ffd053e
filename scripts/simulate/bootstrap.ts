/**
 * Customer-level (cluster) bootstrap of the relative lift of a rate. The summary's delta-method
 * interval treats decisions as independent; in the simulation every customer contributes several
 * decisions to one arm, so resampling customers shows how much wider an interval that respects
 * the clustering is. Pure and seeded.
 */
import { Rng } from "../eval/random";

/** Per customer of one arm: successes and trials (e.g. conversions and decisions). */
export type Cluster = readonly [successes: number, trials: number];

export function clusteredLiftCi(treatment: readonly Cluster[], holdout: readonly Cluster[], seed: number, resamples = 2000): [number, number] | null {
  if (treatment.length === 0 || holdout.length === 0) return null;
  const rng = new Rng(seed);
  const rate = (clusters: readonly Cluster[]) => {
    let s = 0;
    let n = 0;
    for (let i = 0; i < clusters.length; i++) {
      const [cs, cn] = clusters[Math.floor(rng.next() * clusters.length)]!;
      s += cs;
      n += cn;
    }
    return n === 0 ? NaN : s / n;
  };
  const lifts: number[] = [];
  for (let b = 0; b < resamples; b++) {
    const lift = rate(treatment) / rate(holdout) - 1;
    if (Number.isFinite(lift)) lifts.push(lift);
  }
  if (lifts.length < resamples * 0.9) return null;
  lifts.sort((a, b) => a - b);
  const q = (p: number) => lifts[Math.min(lifts.length - 1, Math.floor(p * lifts.length))]!;
  return [q(0.025), q(0.975)];
}
