/**
 * A bound, not a model: the Bayes-optimal prediction from each customer's own history (raw events,
 * full joint context) under the generator's exact habit model, by importance sampling over habit
 * draws (the generator's own makeHabits / changeHabits). Cold start is ranked by the population
 * of habits. `npm run eval -- --bound`. It knows the home country, the habit families and the noise
 * level (the mean of the population's noise range, 0.05 by default), which no production model does.
 */
import { candidateMethods } from "../../src/personalization/candidates";
import { RECENCY_EPOCH_MS } from "../../src/personalization/recency";
import { type CheckoutEvent, type Customer, changeHabits, DAY, DEFAULT_POPULATION, type Habits, makeHabits, MERCHANT_METHODS, type Population } from "./generate";
import { Rng } from "./random";

/** P(method) of the generator's `choose` for given habits, computed exactly instead of sampled. */
export function choiceProbabilities(h: Habits, home: Customer["home"], e: Omit<CheckoutEvent, "method_id">, avail: readonly string[], noise: number): Map<string, number> {
  const out = new Map(avail.map((m) => [m, noise / avail.length]));
  let rest = 1 - noise; // probability that no earlier wish was taken
  const wish = (m: string, p: number) => {
    if (!avail.includes(m) || rest <= 0) return;
    out.set(m, out.get(m)! + rest * p);
    rest *= 1 - p;
  };
  if (e.amount >= 10_000) wish("klarna", h.bnpl);
  if (e.country === home.country && home.local) wish(home.local, e.device_type === "desktop" ? h.local : h.local * 0.6);
  if (e.device_type !== "desktop" && h.wallet) wish(h.wallet, e.device_type === "mobile" ? h.walletOnMobile : h.walletOnMobile * 0.8);
  if (e.device_type === "desktop") wish(h.desktop, 1);
  else if (avail.includes(h.desktop)) {
    wish(h.card, 0.9);
    wish(h.desktop, 1);
  }
  wish(h.card, 1);
  if (rest > 0) out.set(avail[0]!, out.get(avail[0]!)! + rest);
  return out;
}

export interface BoundResult {
  /** Top-1 over all payments, over payments with earlier history, and over first payments. */
  all: number;
  withHistory: number;
  firstPayment: number;
  /** Number of first payments (to recompute `all` with another cold-start answer). */
  firstPayments: number;
}

interface Particle {
  h: Habits;
  changed: Habits | null;
  changeAt: number;
  logWeight: number;
}

export function bayesBound(customers: readonly Customer[], events: readonly CheckoutEvent[], K = 300, population: Population = DEFAULT_POPULATION): BoundResult {
  const noise = (population.noise[0] + population.noise[1]) / 2;
  const rng = new Rng(99);
  const particles = new Map<number, Particle[]>();
  let hits = 0, hitsWithHistory = 0, withHistory = 0, hitsFirst = 0, first = 0;
  for (const e of events) {
    const c = customers[e.customer]!;
    let ps = particles.get(c.id);
    const isFirst = !ps;
    if (!ps) {
      ps = [];
      const pr = c.preferences;
      for (let k = 0; k < K; k++) {
        const h = makeHabits(rng, c.home.local);
        const changed = rng.chance(population.changeShare) ? changeHabits(rng, h) : null;
        // The stated preferences are evidence too (the generator derives them from the first habits).
        let logWeight = Math.log(pr.default_method ? (pr.default_method === h.desktop ? 0.12 : 1e-9) : 0.88);
        logWeight += Math.log(pr.favorite_methods.length ? (pr.favorite_methods[0] === h.wallet ? 0.08 : 1e-9) : h.wallet ? 0.92 : 1);
        logWeight += Math.log(pr.excluded_methods.length ? (h.desktop !== "paypal" ? 0.05 : 1e-9) : h.desktop !== "paypal" ? 0.95 : 1);
        ps.push({ h, changed, changeAt: RECENCY_EPOCH_MS + rng.uniform(30, 150) * DAY, logWeight });
      }
      particles.set(c.id, ps);
    }
    const avail = candidateMethods(MERCHANT_METHODS, e, c.preferences.excluded_methods);
    let max = -Infinity;
    for (const p of ps) max = Math.max(max, p.logWeight);
    const predictive = new Map(avail.map((m) => [m, 0]));
    const likelihood: number[] = [];
    for (const p of ps) {
      const probs = choiceProbabilities(p.changed && e.t >= p.changeAt ? p.changed : p.h, c.home, e, avail, noise);
      const w = Math.exp(p.logWeight - max);
      for (const [m, v] of probs) predictive.set(m, predictive.get(m)! + w * v);
      likelihood.push(probs.get(e.method_id) ?? 1e-9);
    }
    let top = avail[0]!;
    for (const m of avail) if (predictive.get(m)! > predictive.get(top)!) top = m;
    const hit = top === e.method_id ? 1 : 0;
    hits += hit;
    if (isFirst) {
      first += 1;
      hitsFirst += hit;
    } else {
      withHistory += 1;
      hitsWithHistory += hit;
    }
    ps.forEach((p, k) => (p.logWeight += Math.log(likelihood[k]!)));
  }
  return { all: hits / events.length, withHistory: hitsWithHistory / withHistory, firstPayment: hitsFirst / first, firstPayments: first };
}
