/**
 * Seeded synthetic checkout history of one merchant. Customers have context-dependent habits
 * (wallet on mobile, card or PayPal on desktop, BNPL for large baskets, local methods by country),
 * some change habits midway, every choice has noise, and many histories are sparse (1–3 events).
 */
import { candidateMethods } from "../../src/personalization/candidates";
import { RECENCY_EPOCH_MS } from "../../src/personalization/recency";
import type { DeviceType } from "../../src/schemas/common";
import { Rng } from "./random";

export const MERCHANT_METHODS = ["visa", "mastercard", "paypal", "apple_pay", "google_pay", "klarna", "amex", "ideal", "bancontact", "sofort", "blik"];

const COUNTRIES: readonly (readonly [{ country: string; currency: string; local: string | null }, number])[] = [
  [{ country: "US", currency: "USD", local: null }, 35],
  [{ country: "DE", currency: "EUR", local: "sofort" }, 20],
  [{ country: "NL", currency: "EUR", local: "ideal" }, 15],
  [{ country: "GB", currency: "GBP", local: null }, 15],
  [{ country: "BE", currency: "EUR", local: "bancontact" }, 7],
  [{ country: "PL", currency: "PLN", local: "blik" }, 8],
];

export interface Preferences {
  default_method: string | null;
  favorite_methods: string[];
  excluded_methods: string[];
}

export interface Habits {
  card: string;
  desktop: string; // card id or paypal
  wallet: string | null;
  walletOnMobile: number;
  bnpl: number; // probability of BNPL for a large basket
  local: number; // probability of the home country's local method
}

export interface Customer {
  id: number;
  home: { country: string; currency: string; local: string | null };
  mobileShare: number;
  habits: Habits;
  /** Habits after `changeAt` (habit change), if any. */
  changed: Habits | null;
  changeAt: number;
  preferences: Preferences;
  noise: number;
}

export interface CheckoutEvent {
  customer: number;
  t: number;
  device_type: DeviceType;
  country: string;
  currency: string;
  amount: number;
  method_id: string;
}

export const DAY = 86_400_000;
const SPAN_DAYS = 180;

/**
 * The population's shape. The defaults are the documented generator (fixed before any result was
 * seen); `npm run eval -- --sensitivity` varies one at a time to show how the comparison with the
 * literal formula depends on the population, never to pick one.
 */
export interface Population {
  /** Share of customers with only 1–3 payments. */
  sparseShare: number;
  /** Range of a customer's share of checkouts on mobile (the rest: tablet 15 %, desktop). */
  mobileShare: readonly [number, number];
  /** Range of a customer's per-choice noise (a uniformly random available method). */
  noise: readonly [number, number];
  /** Share of customers who change a habit midway. */
  changeShare: number;
}

export const DEFAULT_POPULATION: Readonly<Population> = Object.freeze({ sparseShare: 0.45, mobileShare: [0.2, 0.8], noise: [0.02, 0.08], changeShare: 0.3 });

export function makeHabits(rng: Rng, local: string | null): Habits {
  const card = rng.weighted([["visa", 55], ["mastercard", 35], ["amex", 10]] as const);
  const platform = rng.weighted([["ios", 45], ["android", 40], ["none", 15]] as const);
  return {
    card,
    desktop: rng.chance(0.35) ? "paypal" : card,
    wallet: platform === "ios" ? "apple_pay" : platform === "android" ? "google_pay" : null,
    walletOnMobile: rng.uniform(0.8, 0.98),
    bnpl: rng.chance(0.3) ? rng.uniform(0.7, 0.95) : 0,
    local: local && rng.chance(0.6) ? rng.uniform(0.6, 0.95) : 0,
  };
}

export function changeHabits(rng: Rng, h: Habits): Habits {
  const kind = rng.pick(["card", "desktop", "wallet"] as const);
  if (kind === "card") {
    const card = h.card === "visa" ? "mastercard" : "visa";
    return { ...h, card, desktop: h.desktop === h.card ? card : h.desktop };
  }
  if (kind === "desktop") return { ...h, desktop: h.desktop === "paypal" ? h.card : "paypal" };
  return { ...h, wallet: h.wallet ?? rng.pick(["apple_pay", "google_pay"]), walletOnMobile: rng.uniform(0.7, 0.97) };
}

function makeCustomer(rng: Rng, id: number, pop: Population): Customer {
  const home = rng.weighted(COUNTRIES);
  const habits = makeHabits(rng, home.local);
  const changed = rng.chance(pop.changeShare) ? changeHabits(rng, habits) : null;
  const preferences: Preferences = { default_method: null, favorite_methods: [], excluded_methods: [] };
  if (rng.chance(0.12)) preferences.default_method = habits.desktop;
  if (rng.chance(0.08) && habits.wallet) preferences.favorite_methods.push(habits.wallet);
  if (rng.chance(0.05) && habits.desktop !== "paypal") preferences.excluded_methods.push("paypal");
  return {
    id,
    home,
    mobileShare: rng.uniform(pop.mobileShare[0], pop.mobileShare[1]),
    habits,
    changed,
    changeAt: RECENCY_EPOCH_MS + rng.uniform(30, 150) * DAY,
    preferences,
    noise: rng.uniform(pop.noise[0], pop.noise[1]),
  };
}

function eventCount(rng: Rng, sparseShare: number): number {
  const r = rng.next();
  if (r < sparseShare) return rng.int(1, 3);
  // The rest keeps the default's proportions: 35 : 20 between 4–12 and 13–40 payments.
  if (r < (sparseShare === 0.45 ? 0.8 : sparseShare + (1 - sparseShare) * (35 / 55))) return rng.int(4, 12);
  return rng.int(13, 40);
}

/** What the customer pays with in this context (always an available, non-excluded method). */
export function choose(rng: Rng, c: Customer, e: Omit<CheckoutEvent, "method_id">): string {
  const available = candidateMethods(MERCHANT_METHODS, { ...e }, c.preferences.excluded_methods);
  if (rng.chance(c.noise)) return rng.pick(available);
  const h = c.changed && e.t >= c.changeAt ? c.changed : c.habits;
  const wishes: string[] = [];
  if (e.amount >= 10_000 && rng.chance(h.bnpl)) wishes.push("klarna");
  if (e.country === c.home.country && c.home.local && rng.chance(e.device_type === "desktop" ? h.local : h.local * 0.6)) wishes.push(c.home.local);
  if (e.device_type !== "desktop" && h.wallet && rng.chance(e.device_type === "mobile" ? h.walletOnMobile : h.walletOnMobile * 0.8)) wishes.push(h.wallet);
  wishes.push(e.device_type === "desktop" ? h.desktop : rng.chance(0.9) ? h.card : h.desktop, h.card);
  return wishes.find((m) => available.includes(m)) ?? available[0]!;
}

export function generate(seed: number, customers: number, population: Partial<Population> = {}): { customers: Customer[]; events: CheckoutEvent[] } {
  const pop: Population = { ...DEFAULT_POPULATION, ...population };
  const rng = new Rng(seed);
  const people = Array.from({ length: customers }, (_, i) => makeCustomer(rng, i, pop));
  const events: CheckoutEvent[] = [];
  for (const c of people) {
    const n = eventCount(rng, pop.sparseShare);
    for (let k = 0; k < n; k++) {
      const t = RECENCY_EPOCH_MS + rng.uniform(0, SPAN_DAYS) * DAY;
      const abroad = rng.chance(0.05) ? rng.weighted(COUNTRIES) : c.home;
      const device_type: DeviceType = rng.chance(c.mobileShare) ? "mobile" : rng.chance(0.15) ? "tablet" : "desktop";
      const amount = Math.round(Math.exp(Math.log(6_000) + 1.0 * rng.normal()));
      const partial = { customer: c.id, t, device_type, country: abroad.country, currency: abroad.currency, amount };
      events.push({ ...partial, method_id: choose(rng, c, partial) });
    }
  }
  events.sort((a, b) => a.t - b.t);
  return { customers: people, events };
}
