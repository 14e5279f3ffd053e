/**
 * The simulation's population, built on the offline eval's generator (scripts/eval/generate.ts,
 * imported unchanged): the same customers with context-dependent, noisy habits and sparse
 * histories. This module only moves them onto the simulation's timeline:
 *
 * - Pre-experiment history: the generator's payments of its last HISTORY_DAYS days, replayed with
 *   their real spacing so that the newest one is a minute before the run (`occurred_at` must be
 *   within 90 days). Older payments are dropped, so some customers start without history.
 * - Rounds: round r is a notional ROUND_DAYS later in the customers' *habit* timeline. The worker
 *   runs on the real clock, so every checkout of a round really happens "now"; only the habit
 *   changes move with the rounds: a customer whose habits change (30 % in the generator) switches
 *   at a round drawn uniformly from two weeks before the experiment to its last round.
 */
import { choose, type Customer, generate, MERCHANT_METHODS } from "../eval/generate";
import { Rng } from "../eval/random";
import type { DeviceType } from "../../src/schemas/common";

export { MERCHANT_METHODS };

const DAY = 86_400_000;
export const HISTORY_DAYS = 85;
export const ROUND_DAYS = 7;

export interface Context {
  device_type: DeviceType;
  country: string;
  currency: string;
  amount: number;
}

export interface HistoryPayment extends Context {
  customer: number;
  method_id: string;
  /** Milliseconds before the run started. */
  ago_ms: number;
}

export interface Checkout extends Context {
  customer: number;
  round: number;
  /** What the customer intends to pay with in this context (habit + noise), before seeing the list. */
  habitual: string;
}

export interface Population {
  customers: Customer[];
  history: HistoryPayment[];
  /** The generator's "end of history" in its own time (round r is at end + r · ROUND_DAYS). */
  endT: number;
}

/** Stable per-(seed, a, b) stream, so a checkout's randomness never depends on concurrency. */
export function streamFor(seed: number, a: number, b: number): Rng {
  let h = 2166136261 ^ seed;
  for (const x of [a, b]) {
    h = Math.imul(h ^ (x & 0xffff), 16777619);
    h = Math.imul(h ^ (x >>> 16), 16777619);
  }
  return new Rng(h >>> 0);
}

export function buildPopulation(seed: number, size: number, rounds: number): Population {
  const { customers: generated, events } = generate(seed, size);
  const rng = new Rng(seed ^ 0x5eed);
  const endT = Math.max(...events.map((e) => e.t), 0) + 60_000;
  const customers = generated.map((c) => (c.changed ? { ...c, changeAt: endT + rng.uniform(-14, rounds * ROUND_DAYS) * DAY } : c));
  const history: HistoryPayment[] = [];
  for (const e of events) {
    if (e.t < endT - HISTORY_DAYS * DAY) continue;
    const c = customers[e.customer]!;
    const { customer, device_type, country, currency, amount, t } = e;
    // Re-chosen against the moved habit change, so the history agrees with the rounds.
    history.push({ customer, device_type, country, currency, amount, method_id: choose(rng, c, { customer, t, device_type, country, currency, amount }), ago_ms: endT - t });
  }
  return { customers, history, endT };
}

/** The countries the generator draws from (a customer shops abroad 5 % of the time). */
const ABROAD = [
  { country: "US", currency: "USD" },
  { country: "DE", currency: "EUR" },
  { country: "NL", currency: "EUR" },
  { country: "GB", currency: "GBP" },
  { country: "BE", currency: "EUR" },
  { country: "PL", currency: "PLN" },
] as const;

/**
 * The checkouts of one round: each customer shops with probability `shopProbability`, in a context
 * drawn like the generator's (device by the customer's mobile share, log-normal basket around 60.00,
 * abroad 5 %), and intends to pay with what their habits say for that context at that round.
 */
export function roundCheckouts(pop: Population, seed: number, round: number, shopProbability: number): Checkout[] {
  const out: Checkout[] = [];
  const t = pop.endT + round * ROUND_DAYS * DAY;
  for (const c of pop.customers) {
    const rng = streamFor(seed, c.id, round);
    if (!rng.chance(shopProbability)) continue;
    const where = rng.chance(0.05) ? rng.pick(ABROAD) : c.home;
    const device_type: DeviceType = rng.chance(c.mobileShare) ? "mobile" : rng.chance(0.15) ? "tablet" : "desktop";
    const amount = Math.round(Math.exp(Math.log(6_000) + rng.normal()));
    const ctx = { device_type, country: where.country, currency: where.currency, amount };
    out.push({ customer: c.id, round, ...ctx, habitual: choose(rng, c, { customer: c.id, t, ...ctx }) });
  }
  return out;
}
