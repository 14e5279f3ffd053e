/** Ranking and calibration metrics over a stream of predictions. */
export interface Prediction {
  /** 1-based rank of the method actually paid with. */
  rank: number;
  /** Probability the model gave the method actually paid with. */
  pChosen: number;
  /** Confidence of the top-ranked method, and whether it was the one paid with. */
  topConfidence: number;
  topCorrect: boolean;
}

export interface Summary {
  n: number;
  top1: number;
  mrr: number;
  logLoss: number;
  ece: number;
}

const BINS = 10;
const P_FLOOR = 1e-4;

export function summarize(preds: readonly Prediction[]): Summary {
  const n = preds.length;
  if (n === 0) return { n, top1: NaN, mrr: NaN, logLoss: NaN, ece: NaN };
  let top1 = 0, mrr = 0, logLoss = 0;
  const bins = Array.from({ length: BINS }, () => ({ n: 0, conf: 0, hits: 0 }));
  for (const p of preds) {
    if (p.rank === 1) top1++;
    mrr += 1 / p.rank;
    logLoss -= Math.log(Math.max(P_FLOOR, p.pChosen));
    const bin = bins[Math.min(BINS - 1, Math.floor(p.topConfidence * BINS))]!;
    bin.n++;
    bin.conf += p.topConfidence;
    bin.hits += p.topCorrect ? 1 : 0;
  }
  const ece = bins.reduce((acc, b) => acc + (b.n === 0 ? 0 : (b.n / n) * Math.abs(b.hits / b.n - b.conf / b.n)), 0);
  return { n, top1: top1 / n, mrr: mrr / n, logLoss: logLoss / n, ece };
}

export function predictionFrom(order: readonly string[], probs: ReadonlyMap<string, number>, chosen: string): Prediction {
  const rank = order.indexOf(chosen) + 1 || order.length + 1;
  return { rank, pChosen: probs.get(chosen) ?? 0, topConfidence: probs.get(order[0]!) ?? 0, topCorrect: order[0] === chosen };
}
