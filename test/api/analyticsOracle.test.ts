import { createExecutionContext, createMessageBatch, env, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Rng } from "../../scripts/eval/random";
import { customerRef } from "../../src/crypto/pseudonym";
import worker from "../../src/index";
import { runAnalyticsRollups } from "../../src/jobs/rollups";
import { customerTag, signDecision } from "../../src/personalization/decision";
import type { DecisionMessage, OffersShownMessage, SummaryResponse, TimeseriesResponse } from "../../src/schemas/analytics";
import type { FeedbackMessage } from "../../src/schemas/feedback";
import { deliverAnalytics } from "../helpers/analytics";
import { api, createMerchant, type TestMerchant } from "../helpers/fixtures";

/**
 * A seeded, model-based test of analytics (API.md §6, docs/analytics.md). Each seed generates a
 * reproducible history for two merchants — decisions of both arms and of every fallback, some never
 * delivered (a lost record); conversions by decision_id, some an hour or days late, a few repeated
 * (a second payment, a client retry); unattributed payments; offers shown, repeated and redeemed
 * (or paid too early, too late, for another offer); amounts in several currencies, some without
 * one — spread over the last 40 days (a few up to 89.5 days back), plus the current hour through the real /methods and /offers.
 * It delivers everything through the real paths in the order it would have arrived: analytics
 * messages and feedback through the real queue consumers (createMessageBatch), feedback first
 * through POST /v1/personalize/feedback/batch, decisions of the past signed as /methods signs them
 * (the real route cannot date one in the past). Between deliveries it runs the rollup job at the
 * time it would have run (runAnalyticsRollups with that `now`), so hours get rolled up and then
 * receive late rows, and some days are left for later runs (the job's 600-query budget).
 *
 * Then it asks GET /v1/analytics/summary and /timeseries over several windows (aligned and not,
 * hourly and daily, with and without currency, ending now and in the past; also twice in the middle
 * of the history) and compares every number with a plain recomputation from the generated history
 * (the oracle below), as docs/analytics.md defines them: counts, rates, top-1, MRR, AOV, the Katz
 * interval and Wald p-value of the lift, the SRM chi-square, the median time to pay within its
 * documented bin error, methods, offers (the redemption rule), fallbacks.
 *
 * Deterministic: the same seed gives the same history (times relative to a `now` read once; the
 * only clock the real path reads is the current hour's, whose times the oracle takes from what was
 * recorded). A failure names the seed, the merchant and the query. To explore, add seeds to SEEDS.
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const MINUTE = 60_000;
const floorHour = (ms: number) => Math.floor(ms / HOUR) * HOUR;
const ceilHour = (ms: number) => Math.ceil(ms / HOUR) * HOUR;
const floorDay = (ms: number) => Math.floor(ms / DAY) * DAY;
const ceilDay = (ms: number) => Math.ceil(ms / DAY) * DAY;
const iso = (ms: number) => new Date(ms).toISOString();
const key = (ms: number) => new Date(ms).toISOString().slice(0, 13) + ":00:00Z";

const SEEDS = [1, 2, 3, 0xa11c];
const FEEDBACK_QUEUE = "feedback-events-dev";
const METHODS = ["visa", "mastercard", "apple_pay", "google_pay", "paypal", "klarna", "ideal"];
const OFFERS = [
  { offer_id: "o_paypal5", method_id: "paypal", title: "5 off with PayPal", discount_type: "fixed", discount_value: 500 },
  { offer_id: "o_klarna", method_id: "klarna", title: "10 % with Klarna", discount_type: "percent", discount_value: 10 },
  { offer_id: "o_apple", method_id: "apple_pay", title: "2 off with Apple Pay", discount_type: "fixed", discount_value: 200 },
] as const;
const FALLBACKS = ["no_history", "personalization_disabled", "holdout", "customer_deleted", "guest", "degraded"] as const;
const CURRENCIES = ["EUR", "USD", "GBP"] as const;
const Z_95 = 1.959963984540054;

afterEach(() => vi.restoreAllMocks());

// ─── the generated history (what the oracle knows) ──────────────────────────────────────────────

type Arm = "treatment" | "holdout";

interface Decision {
  id: string;
  customer: string | null;
  at: number;
  arm: Arm | null;
  fallback: string | null;
  personalized: boolean;
  ranked: string[];
  cache: "hit" | "miss" | null;
  /** The holdout_percent its message carries (undefined: a message queued before it existed, migration 0011). */
  percent: number | undefined;
  message: DecisionMessage;
}

interface Payment {
  eventId: string;
  customer: string;
  method: string;
  amount: number | null;
  currency: string | null;
  occurredAt: number;
  offerId: string | null;
  decision: Decision | null;
  /** Set once stored: the arm of the decision this payment converted ('' when it converted none). */
  convertedArm?: Arm | "";
}

interface Conversion {
  decision: Decision;
  rank: number;
  amount: number | null;
  currency: string | null;
  occurredAt: number;
  eventId: string;
}

interface Impression {
  impressionId: string;
  customer: string | null;
  shownAt: number;
  offerIds: string[];
}

interface Shop {
  m: TestMerchant;
  holdout: number;
  optedOut: Set<string>;
  /** What has been stored so far, as the docs say the pipeline stores it. */
  decisions: Decision[];
  payments: Payment[];
  conversions: Map<string, Conversion>;
  impressions: { impressionId: string; offerId: string; customer: string | null; shownAt: number }[];
  eventIds: Set<string>;
}

type Action =
  | { at: number; kind: "decision"; shop: Shop; decision: Decision; deliver: boolean }
  | { at: number; kind: "impression"; shop: Shop; impression: Impression }
  | { at: number; kind: "payment"; shop: Shop; payment: Payment }
  | { at: number; kind: "rollup" }
  | { at: number; kind: "check" };

// ─── the oracle ─────────────────────────────────────────────────────────────────────────────────

/** erfc to ~1e-14 relative (series below 2, continued fraction above): an independent check of the 1.2e-7 fit in src. */
function erfc(x: number): number {
  if (x < 0) return 2 - erfc(-x);
  if (x < 2) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 100; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))), evaluated backwards.
  let f = x;
  for (let k = 60; k >= 1; k--) f = x + k / 2 / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

interface Lift {
  relative: number | null;
  ci95: [number, number] | null;
  p_value: number | null;
}

/** docs/analytics.md: R = p_t / p_h (rates capped at 1), Katz interval on ln R, Wald p-value with the same SE. */
function lift(sT: number, nT: number, sH: number, nH: number): Lift {
  if (nT === 0 || nH === 0 || sH === 0) return { relative: null, ci95: null, p_value: null };
  const pT = Math.min(1, sT / nT);
  const pH = Math.min(1, sH / nH);
  const r = pT / pH;
  if (pT === 0) return { relative: -1, ci95: null, p_value: null };
  const se = Math.sqrt((1 - pT) / (nT * pT) + (1 - pH) / (nH * pH));
  if (se === 0) return { relative: r - 1, ci95: null, p_value: null };
  const ln = Math.log(r);
  return { relative: r - 1, ci95: [Math.exp(ln - Z_95 * se) - 1, Math.exp(ln + Z_95 * se) - 1], p_value: erfc(Math.abs(ln / se) / Math.SQRT2) };
}

const ratio = (a: number, b: number) => (b > 0 ? a / b : null);
const inWindow = (t: number, from: number, to: number) => t >= from && t < to;

/** The offers shown in [from, to) and those redeemed, by the rule of docs/analytics.md "Offer redemptions". */
function offerTotals(shop: Shop, from: number, to: number) {
  let shown = 0;
  let redeemed = 0;
  for (const i of shop.impressions) {
    if (!inWindow(i.shownAt, from, to)) continue;
    shown += 1;
    if (i.customer === null) continue;
    const sameOffer = shop.impressions.filter((j) => j.customer === i.customer && j.offerId === i.offerId);
    const redeems = shop.payments.some(
      (u) =>
        u.customer === i.customer &&
        u.offerId === i.offerId &&
        u.occurredAt >= i.shownAt - 5 * MINUTE &&
        u.occurredAt < i.shownAt + DAY &&
        // i is the latest showing at or before the payment (+5 min of skew); ties by impression id.
        !sameOffer.some((j) => j.shownAt <= u.occurredAt + 5 * MINUTE && (j.shownAt > i.shownAt || (j.shownAt === i.shownAt && j.impressionId > i.impressionId))),
    );
    if (redeems) redeemed += 1;
  }
  return { shown, redeemed, redemption_rate: ratio(redeemed, shown) };
}

/** The median time to pay as documented: every time of 1 s or less counts as 500 ms; the answer is within 0.5 % of it (+1 ms rounding). */
function medianTtp(conversions: Conversion[]): number | null {
  const v = conversions.map((c) => Math.max(0, c.occurredAt - c.decision.at)).map((ms) => (ms <= 1000 ? 500 : ms)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  return (v[Math.floor((v.length - 1) / 2)]! + v[Math.floor(v.length / 2)]!) / 2;
}

interface ExpectedSummary {
  body: Omit<SummaryResponse, "arms"> & { arms: Record<Arm, Omit<SummaryResponse["arms"]["treatment"], "median_time_to_pay_ms">> };
  medians: Record<Arm, number | null>;
}

function expectedSummary(shop: Shop, from: number, to: number): ExpectedSummary {
  const decisions = shop.decisions.filter((d) => inWindow(d.at, from, to));
  const conversions = [...shop.conversions.values()].filter((c) => inWindow(c.decision.at, from, to));
  const arm = (a: Arm) => {
    const ds = decisions.filter((d) => d.arm === a);
    const cs = conversions.filter((c) => c.decision.arm === a);
    const top1 = cs.filter((c) => c.rank === 1).length;
    return {
      n: ds.length,
      c: cs.length,
      top1,
      stats: {
        decisions: ds.length,
        conversions: cs.length,
        conversion_rate: ratio(cs.length, ds.length),
        top1_rate: ratio(top1, cs.length),
        mrr: ratio(cs.reduce((s, c) => s + (c.rank > 0 ? 1 / c.rank : 0), 0), cs.length),
      },
      median: medianTtp(cs),
      // In millionths of the share (docs: "so hourly, daily and raw sums agree exactly").
      ppmSum: ds.reduce((s, d) => s + Math.round((d.percent ?? shop.holdout) * 10_000), 0),
    };
  };
  const t = arm("treatment");
  const h = arm("holdout");

  // SRM: chi-square of holdout vs treatment decisions against the decision-weighted mean percent.
  const n = t.n + h.n;
  const expectedShare = n === 0 ? shop.holdout / 100 : (t.ppmSum + h.ppmSum) / (1_000_000 * n);
  let srmP: number | null = null;
  if (n > 0) {
    const eH = n * expectedShare;
    const eT = n - eH;
    let chi2 = 0;
    if (eH > 0) chi2 += (h.n - eH) ** 2 / eH;
    else if (h.n > 0) chi2 = Infinity;
    if (eT > 0) chi2 += (t.n - eT) ** 2 / eT;
    else if (t.n > 0) chi2 = Infinity;
    srmP = chi2 === Infinity ? 0 : chi2 <= 0 ? 1 : Math.min(1, erfc(Math.sqrt(chi2 / 2)));
  }

  // AOV per currency and arm: conversions with both an amount and a currency.
  const currencies = [...new Set(conversions.filter((c) => c.decision.arm !== null && c.amount !== null && c.currency !== null).map((c) => c.currency!))].sort((a, b) => a.localeCompare(b));
  const aov = currencies.map((currency) => {
    const mean = (a: Arm) => {
      const xs = conversions.filter((c) => c.decision.arm === a && c.currency === currency && c.amount !== null);
      return xs.length === 0 ? null : Math.round(xs.reduce((s, c) => s + c.amount!, 0) / xs.length);
    };
    return { currency, treatment: mean("treatment"), holdout: mean("holdout") };
  });

  // Methods: every stored payment by occurred_at; arm shares among payments that converted a decision of that arm.
  const payments = shop.payments.filter((p) => inWindow(p.occurredAt, from, to));
  const byMethod = new Map<string, { all: number; treatment: number; holdout: number }>();
  const totals = { all: 0, treatment: 0, holdout: 0 };
  for (const p of payments) {
    const m = byMethod.get(p.method) ?? { all: 0, treatment: 0, holdout: 0 };
    byMethod.set(p.method, m);
    m.all += 1;
    totals.all += 1;
    if (p.convertedArm) {
      m[p.convertedArm] += 1;
      totals[p.convertedArm] += 1;
    }
  }
  const methods = [...byMethod.entries()]
    .sort(([a, x], [b, y]) => y.all - x.all || a.localeCompare(b))
    .map(([method_id, m]) => ({ method_id, payments: m.all, share: ratio(m.all, totals.all), treatment_share: ratio(m.treatment, totals.treatment), holdout_share: ratio(m.holdout, totals.holdout) }));

  const fallbacks = Object.fromEntries(FALLBACKS.map((r) => [r, decisions.filter((d) => d.fallback === r).length])) as SummaryResponse["fallbacks"];
  const hits = decisions.filter((d) => d.cache === "hit").length;
  const known = decisions.filter((d) => d.cache !== null).length;
  return {
    body: {
      merchant_id: shop.m.merchantId,
      from: key(from),
      to: key(to),
      holdout_percent: shop.holdout,
      arms: { treatment: t.stats, holdout: h.stats },
      lift: { conversion_rate: lift(t.c, t.n, h.c, h.n), top1_rate: lift(t.top1, t.c, h.top1, h.c) },
      srm: { expected_holdout_share: expectedShare, observed_holdout_share: ratio(h.n, n), p_value: srmP, warning: srmP !== null && srmP < 0.001 },
      aov,
      methods,
      offers: offerTotals(shop, from, to),
      personalization_rate: ratio(decisions.filter((d) => d.personalized).length, decisions.length),
      cache_hit_rate: ratio(hits, known),
      fallbacks,
    },
    medians: { treatment: t.median, holdout: h.median },
  };
}

type Metric = "decisions" | "conversions" | "conversion_rate" | "top1_rate" | "aov";

function expectedPoints(shop: Shop, metric: Metric, grain: "hour" | "day", from: number, to: number, currency?: string) {
  const step = grain === "hour" ? HOUR : DAY;
  const points: { t: string; treatment: number | null; holdout: number | null }[] = [];
  for (let b = from; b < to; b += step) {
    const value = (a: Arm): number | null => {
      const ds = shop.decisions.filter((d) => d.arm === a && inWindow(d.at, b, b + step));
      const cs = [...shop.conversions.values()].filter((c) => c.decision.arm === a && inWindow(c.decision.at, b, b + step));
      switch (metric) {
        case "decisions":
          return ds.length;
        case "conversions":
          return cs.length;
        case "conversion_rate":
          return ratio(cs.length, ds.length);
        case "top1_rate":
          return ratio(cs.filter((c) => c.rank === 1).length, cs.length);
        case "aov": {
          const xs = cs.filter((c) => c.currency === currency && c.amount !== null);
          return xs.length === 0 ? null : Math.round(xs.reduce((s, c) => s + c.amount!, 0) / xs.length);
        }
      }
    };
    points.push({ t: key(b), treatment: value("treatment"), holdout: value("holdout") });
  }
  return points;
}

/** Numbers equal, floats to 1e-9 relative (sums in another order), p-values to 1e-6 relative (src's erfc fit is good to 1.2e-7). */
function compare(label: string, got: unknown, want: unknown, path = ""): string[] {
  const here = `${label} ${path || "(root)"}`;
  if (typeof want === "number" && typeof got === "number") {
    const tol = path.endsWith("p_value") ? 1e-6 * Math.abs(want) + 1e-12 : 1e-9 * Math.abs(want) + 1e-12;
    return Math.abs(got - want) <= tol ? [] : [`${here}: got ${got}, expected ${want}`];
  }
  if (Array.isArray(want)) {
    if (!Array.isArray(got) || got.length !== want.length) return [`${here}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`];
    return want.flatMap((w, i) => compare(label, got[i], w, `${path}[${i}]`));
  }
  if (want !== null && typeof want === "object") {
    if (got === null || typeof got !== "object") return [`${here}: got ${JSON.stringify(got)}, expected an object`];
    const keys = Object.keys(want);
    const extra = Object.keys(got).filter((k) => !keys.includes(k) && k !== "median_time_to_pay_ms");
    return [...(extra.length ? [`${here}: unexpected keys ${extra.join(", ")}`] : []), ...keys.flatMap((k) => compare(label, (got as Record<string, unknown>)[k], (want as Record<string, unknown>)[k], path ? `${path}.${k}` : k))];
  }
  return got === want ? [] : [`${here}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`];
}

// ─── delivery through the real paths ────────────────────────────────────────────────────────────

let deliveries = 0;

/** POST /v1/personalize/feedback/batch (the real route), then its messages through the real feedback consumer. */
async function deliverFeedback(shop: Shop, payments: Payment[]): Promise<FeedbackMessage[]> {
  const sent: FeedbackMessage[] = [];
  vi.spyOn(env.FEEDBACK_QUEUE, "send").mockImplementation(async (body) => (sent.push(body as FeedbackMessage), undefined as never));
  vi.spyOn(env.FEEDBACK_QUEUE, "sendBatch").mockImplementation(async (items) => (sent.push(...[...items].map((i) => i.body as FeedbackMessage)), undefined as never));
  const events = payments.map((p) => ({
    customer_id: p.customer,
    method_id: p.method,
    event_id: p.eventId,
    occurred_at: iso(p.occurredAt),
    ...(p.amount !== null ? { amount: p.amount } : {}),
    ...(p.currency !== null ? { currency: p.currency } : {}),
    ...(p.offerId !== null ? { offer_id: p.offerId } : {}),
    ...(p.decision ? { decision_id: p.decision.id } : {}),
  }));
  const res = await api(shop.m.secretKey, "/v1/personalize/feedback/batch", { method: "POST", body: JSON.stringify({ events }) });
  expect(res.status, await res.clone().text()).toBe(202);
  vi.mocked(env.FEEDBACK_QUEUE.send).mockRestore();
  vi.mocked(env.FEEDBACK_QUEUE.sendBatch).mockRestore();
  expect(sent.map((m) => m.event_id)).toEqual(payments.map((p) => p.eventId));
  deliveries += 1;
  const batch = createMessageBatch(FEEDBACK_QUEUE, sent.map((body, i) => ({ id: `fb_${deliveries}_${i}`, timestamp: new Date(), attempts: 1, body })));
  const ctx = createExecutionContext();
  await worker.queue(batch, env, ctx);
  await waitOnExecutionContext(ctx);
  const result = await getQueueResult(batch, ctx);
  expect(result.retryMessages, "feedback consumer retried").toEqual([]);
  expect(result.explicitAcks.length).toBe(sent.length);
  return sent;
}

/** What the pipeline stores of a feedback batch, in order (docs/analytics.md "Conversions"). */
function storePayments(shop: Shop, payments: Payment[], messages: FeedbackMessage[]): void {
  payments.forEach((p, i) => {
    const msg = messages[i]!;
    // The route read arm, rank and time from the signed id: the same as generated.
    if (p.decision) expect(msg.decision).toEqual({ decision_id: p.decision.id, arm: p.decision.arm, fallback_reason: p.decision.fallback, rank: rankOf(p.decision, p.method) || null, issued_at: iso(p.decision.at) });
    if (shop.optedOut.has(p.customer) || shop.eventIds.has(p.eventId)) return; // an opted-out customer's event, or a retry: not stored
    shop.eventIds.add(p.eventId);
    p.convertedArm = "";
    shop.payments.push(p);
    const d = p.decision;
    if (d && !shop.conversions.has(d.id)) {
      shop.conversions.set(d.id, { decision: d, rank: rankOf(d, p.method), amount: p.amount, currency: p.currency, occurredAt: p.occurredAt, eventId: p.eventId });
      if (d.arm) p.convertedArm = d.arm;
    }
  });
}

const rankOf = (d: Decision, method: string) => d.ranked.indexOf(method) + 1;

async function decisionMessage(shop: Shop, d: Omit<Decision, "id" | "message">): Promise<Decision> {
  const ref = d.customer === null ? null : await customerRef(env.PII_KEY, d.customer);
  const tag = ref === null ? {} : { c: await customerTag(env.SIGNING_KEY, shop.m.merchantId, ref) };
  const id = await signDecision(env.SIGNING_KEY, { m: shop.m.merchantId, a: d.arm, f: d.fallback as never, r: d.ranked, t: d.at, ...tag });
  const message: DecisionMessage = {
    v: 1,
    kind: "decision",
    decision_id: id,
    merchant_id: shop.m.merchantId,
    customer_ref: ref,
    issued_at: iso(d.at),
    arm: d.arm,
    personalized: d.personalized,
    fallback_reason: d.fallback,
    ranked: d.ranked,
    device_type: "mobile",
    country: "NL",
    currency: null,
    cache: d.cache,
    ...(d.percent === undefined ? {} : { holdout_percent: d.percent }),
  };
  return { ...d, id, message };
}

async function impressionMessage(shop: Shop, i: Impression): Promise<OffersShownMessage> {
  return {
    v: 1,
    kind: "offers_shown",
    impression_id: i.impressionId,
    merchant_id: shop.m.merchantId,
    customer_ref: i.customer === null ? null : await customerRef(env.PII_KEY, i.customer),
    shown_at: iso(i.shownAt),
    offer_ids: i.offerIds,
  };
}

function storeImpression(shop: Shop, i: Impression): void {
  for (const offerId of new Set(i.offerIds)) shop.impressions.push({ impressionId: i.impressionId, offerId, customer: i.customer, shownAt: i.shownAt });
}

// ─── generation ─────────────────────────────────────────────────────────────────────────────────

async function newShop(rng: Rng, seed: number, name: string): Promise<Shop> {
  const holdout = rng.pick([0, 10, 12.5, 20, 30, 50]);
  const m = await createMerchant({ merchant_id: `m_oracle_${seed}_${name}_${Date.now().toString(36)}`, holdout_percent: holdout, features: { targeted_offers: true, cross_merchant: false }, offers: OFFERS });
  const shop: Shop = { m, holdout, optedOut: new Set(), decisions: [], payments: [], conversions: new Map(), impressions: [], eventIds: new Set() };
  // One customer opted out from the start: their decisions fall back (personalization_disabled) and their payments are not stored.
  const out = `c_${seed}_${name}_out`;
  const res = await api(m.secretKey, "/v1/personalize/preferences", { method: "PUT", body: JSON.stringify({ customer_id: out, personalization_enabled: false }) });
  expect(res.status, await res.clone().text()).toBe(200);
  shop.optedOut.add(out);
  return shop;
}

/** A history of the last ~40 days for one shop: the actions, each at the time it reached the pipeline. */
async function generate(rng: Rng, seed: number, name: string, shop: Shop, now: number): Promise<Action[]> {
  const actions: Action[] = [];
  const customers = Array.from({ length: 10 }, (_, i) => `c_${seed}_${name}_${i}`);
  const armOf = new Map(customers.map((c) => [c, (rng.chance(shop.holdout / 100) ? "holdout" : "treatment") as Arm]));
  const out = [...shop.optedOut][0]!;
  let eventSeq = 0;
  const eventId = () => `ev_${seed}_${name}_${eventSeq++}`;
  // Times cluster on a few days (so days hold several hours, and hours several rows), the rest anywhere.
  const hotDays = Array.from({ length: 6 }, () => floorDay(now - rng.uniform(0, 40) * DAY));
  const when = () => {
    // A few near the 90 days of raw retention (what the API still accepts), for the 90-day windows.
    let t = rng.chance(0.6) ? rng.pick(hotDays) + rng.uniform(0, DAY) : rng.chance(0.05) ? now - rng.uniform(80, 89.5) * DAY : now - rng.uniform(0, 40 * DAY);
    // Some on a bucket's edge: the first or last millisecond of an hour or a UTC day.
    if (rng.chance(0.1)) t = (rng.chance(0.5) ? floorHour(t) : floorDay(t)) - (rng.chance(0.5) ? 1 : 0);
    return Math.floor(Math.min(t, now - MINUTE));
  };
  const lag = () => (rng.chance(0.8) ? rng.uniform(0, 5 * MINUTE) : rng.chance(0.5) ? rng.uniform(HOUR, 3 * HOUR) : rng.uniform(DAY, 4 * DAY));
  const deliveredAt = (t: number) => Math.min(now, t + lag());
  const previousPercent = rng.pick([5, 15, 25, 33.3333333]);

  const nDecisions = rng.int(40, 70);
  for (let k = 0; k < nDecisions; k++) {
    const at = when();
    const ranked = [...METHODS].sort(() => rng.next() - 0.5).slice(0, rng.int(3, 5));
    const kind = rng.weighted([["arm", 70], ["guest", 10], ["out", 6], ["deleted", 4], ["degraded", 5], ["no_history", 5]] as const);
    const customer = kind === "guest" ? null : kind === "out" ? out : kind === "deleted" ? `gone_${seed}_${name}_${k}` : rng.pick(customers);
    const arm = kind === "arm" || kind === "degraded" || kind === "no_history" ? armOf.get(customer!) ?? "treatment" : null;
    const fallback =
      kind === "guest" ? "guest" : kind === "out" ? "personalization_disabled" : kind === "deleted" ? "customer_deleted" : kind === "degraded" ? "degraded" : arm === "holdout" ? "holdout" : kind === "no_history" ? "no_history" : null;
    const cache = customer === null ? null : rng.pick(["hit", "miss"] as const);
    // Older decisions were made under another holdout_percent; a few carry none (queued before migration 0011).
    const percent = rng.chance(0.1) ? undefined : at < now - 20 * DAY ? previousPercent : shop.holdout;
    const decision = await decisionMessage(shop, { customer, at, arm, fallback, personalized: fallback === null, ranked, cache, percent });
    const delivered = !rng.chance(0.03); // a lost record (analytics queue down): its conversion still counts
    actions.push({ at: deliveredAt(at), kind: "decision", shop, decision, deliver: delivered });

    if (kind === "deleted" || !rng.chance(arm === "treatment" ? 0.6 : 0.45)) continue;
    const payer = customer ?? rng.pick(customers);
    const method = rng.chance(0.5) ? ranked[0]! : rng.chance(0.85) ? rng.pick(ranked) : rng.pick(METHODS);
    const ttp = rng.weighted([["skew", 4], ["fast", 4], ["normal", 72], ["hour", 12], ["days", 8]] as const);
    const dt =
      ttp === "skew" ? -rng.uniform(0, 3000) : ttp === "fast" ? rng.uniform(100, 1000) : ttp === "normal" ? Math.exp(rng.uniform(Math.log(5000), Math.log(900_000))) : ttp === "hour" ? rng.uniform(HOUR, 3 * HOUR) : rng.uniform(DAY, 5 * DAY);
    const occurredAt = Math.floor(Math.min(now - 30_000, at + dt));
    const money = rng.weighted([["both", 80], ["none", 10], ["amount", 5], ["currency", 5]] as const);
    const currency = rng.chance(0.7) ? CURRENCIES[0] : rng.pick(CURRENCIES);
    const payment: Payment = {
      eventId: eventId(),
      customer: payer,
      method,
      amount: money === "both" || money === "amount" ? (rng.chance(0.05) ? rng.int(1e11, 1e12) : rng.int(100, 50_000)) : null,
      currency: money === "both" || money === "currency" ? currency : null,
      occurredAt,
      offerId: null,
      decision,
    };
    actions.push({ at: deliveredAt(occurredAt), kind: "payment", shop, payment });
    if (rng.chance(0.05)) actions.push({ at: deliveredAt(occurredAt) + rng.uniform(0, HOUR), kind: "payment", shop, payment: { ...payment } }); // a client retry, same event_id
    if (rng.chance(0.08)) {
      // A second payment naming the same decision: a payment, never a second conversion.
      const second: Payment = { ...payment, eventId: eventId(), occurredAt: Math.floor(Math.min(now - 20_000, occurredAt + rng.uniform(MINUTE, DAY))), amount: rng.int(100, 9999) };
      actions.push({ at: deliveredAt(second.occurredAt), kind: "payment", shop, payment: second });
    }
  }

  // Payments without a decision, some naming an offer nobody was shown.
  for (let k = 0, n = rng.int(8, 16); k < n; k++) {
    const occurredAt = when();
    const payment: Payment = { eventId: eventId(), customer: rng.pick([...customers, out]), method: rng.pick(METHODS), amount: rng.int(100, 20_000), currency: rng.pick(CURRENCIES), occurredAt, offerId: rng.chance(0.2) ? "o_junk" : null, decision: null };
    actions.push({ at: deliveredAt(occurredAt), kind: "payment", shop, payment });
  }

  // Offers shown (some to guests, some shown again), and payments that redeem them or just miss.
  let impSeq = 0;
  for (let k = 0, n = rng.int(12, 24); k < n; k++) {
    const shownAt = when();
    const customer = rng.chance(0.15) ? null : rng.pick(customers);
    const offerIds = OFFERS.filter(() => rng.chance(0.6)).map((o) => o.offer_id);
    if (offerIds.length === 0) offerIds.push(OFFERS[0].offer_id);
    if (rng.chance(0.1)) offerIds.push(offerIds[0]!); // a repeated id in one answer counts once
    const showings: Impression[] = [{ impressionId: `imp_${seed}_${name}_${impSeq++}`, customer, shownAt, offerIds }];
    if (customer !== null && rng.chance(0.3)) {
      const again = Math.floor(Math.min(now - MINUTE, shownAt + rng.uniform(MINUTE, 2 * HOUR)));
      if (again !== shownAt) showings.push({ impressionId: `imp_${seed}_${name}_${impSeq++}`, customer, shownAt: again, offerIds: [offerIds[0]!] });
    }
    for (const impression of showings) actions.push({ at: deliveredAt(impression.shownAt), kind: "impression", shop, impression });
    if (customer === null || !rng.chance(0.6)) continue;
    const offerId = rng.pick(offerIds);
    const offset = rng.weighted([["inside", 70], ["before", 8], ["early", 7], ["late", 7], ["other", 8]] as const);
    const dt =
      offset === "inside" ? rng.uniform(0, 6 * HOUR) : offset === "before" ? -rng.uniform(0, 5 * MINUTE) : offset === "early" ? -rng.uniform(6 * MINUTE, HOUR) : offset === "late" ? rng.uniform(DAY, 2 * DAY) : rng.uniform(0, HOUR);
    const occurredAt = Math.floor(Math.min(now - 10_000, shownAt + dt));
    const payer = offset === "other" ? rng.pick(customers.filter((c) => c !== customer)) : customer;
    const method = OFFERS.find((o) => o.offer_id === offerId)!.method_id;
    actions.push({ at: deliveredAt(occurredAt), kind: "payment", shop, payment: { eventId: eventId(), customer: payer, method, amount: rng.int(500, 9000), currency: "EUR", occurredAt, offerId, decision: null } });
    if (rng.chance(0.25)) {
      // Shown again less than 5 minutes after that payment: the payment goes to the new showing (clock skew), still one redemption.
      const again = Math.floor(occurredAt + rng.uniform(1, 5 * MINUTE));
      if (again < now) actions.push({ at: deliveredAt(again), kind: "impression", shop, impression: { impressionId: `imp_${seed}_${name}_${impSeq++}`, customer: payer, shownAt: again, offerIds: [offerId] } });
    }
  }
  return actions;
}

/** The current hour through the real /methods and /offers (the real clock dates them): their records as the routes sent them. */
async function liveTraffic(rng: Rng, seed: number, name: string, shop: Shop): Promise<{ decisions: Decision[]; impressions: Impression[] }> {
  const sent: unknown[] = [];
  const send = vi.spyOn(env.ANALYTICS_QUEUE, "send").mockImplementation(async (body) => (sent.push(body), undefined as never));
  const customers = [...Array.from({ length: 6 }, (_, i) => `c_${seed}_${name}_${i}`), `c_${seed}_${name}_new`, [...shop.optedOut][0]!];
  const answers: { id: string; fallback: string | null; personalized: boolean }[] = [];
  let requests = 0;
  for (let k = 0, n = rng.int(6, 10); k < n; k++) {
    const guest = rng.chance(0.2);
    const customer = rng.pick(customers);
    const query = new URLSearchParams({ device_type: rng.pick(["mobile", "desktop"]), country: rng.pick(["NL", "US", "DE"]), amount: String(rng.int(100, 20_000)), currency: rng.pick(CURRENCIES) });
    if (!guest) query.set("customer_id", customer);
    const res = await api(guest ? shop.m.publishableKey : shop.m.secretKey, `/v1/personalize/methods?${query}`);
    expect(res.status, await res.clone().text()).toBe(200);
    const body = await res.json<{ decision_id: string; personalized: boolean; fallback_reason?: string }>();
    answers.push({ id: body.decision_id, fallback: body.fallback_reason ?? null, personalized: body.personalized });
    requests += 1;
    if (rng.chance(0.4)) {
      const offers = await api(guest ? shop.m.publishableKey : shop.m.secretKey, `/v1/personalize/offers?${query}`);
      expect(offers.status).toBe(200);
      if ((await offers.json<{ offers: unknown[] }>()).offers.length > 0) requests += 1;
    }
  }
  await vi.waitFor(() => expect(sent.length).toBe(requests));
  send.mockRestore();
  const decisions: Decision[] = [];
  const impressions: Impression[] = [];
  const refs = new Map(await Promise.all(customers.map(async (c) => [await customerRef(env.PII_KEY, c), c] as const)));
  for (const body of sent as (DecisionMessage | OffersShownMessage)[]) {
    if (body.kind === "offers_shown") {
      impressions.push({ impressionId: body.impression_id, customer: body.customer_ref === null ? null : refs.get(body.customer_ref)!, shownAt: Date.parse(body.shown_at), offerIds: body.offer_ids });
      continue;
    }
    const answer = answers.find((a) => a.id === body.decision_id)!;
    // The record agrees with the answer it describes (arm by assignment: holdout is the holdout's fallback).
    expect(body).toMatchObject({ fallback_reason: answer.fallback, personalized: answer.personalized });
    if (answer.fallback === "holdout") expect(body.arm).toBe("holdout");
    if (answer.fallback === "guest" || answer.fallback === "personalization_disabled") expect(body.arm).toBeNull();
    decisions.push({
      id: body.decision_id,
      customer: body.customer_ref === null ? null : refs.get(body.customer_ref)!,
      at: Date.parse(body.issued_at),
      arm: body.arm,
      fallback: body.fallback_reason,
      personalized: body.personalized,
      ranked: body.ranked,
      cache: body.cache,
      percent: body.holdout_percent ?? undefined,
      message: body,
    });
  }
  return { decisions, impressions };
}

// ─── the run ────────────────────────────────────────────────────────────────────────────────────

/** A window bound: epoch ms, or a timestamp as sent (up to 9 fractional digits, which the Timestamp schema takes). */
type Bound = number | string;
const text = (b: Bound) => (typeof b === "number" ? iso(b) : b);
/** The instant rounded down / up to the millisecond: Date.parse keeps 3 fractional digits and drops the rest. */
const floorMs = (b: Bound) => Date.parse(text(b));
const ceilMs = (b: Bound) => Date.parse(text(b)) + (/\.\d{3}\d*[1-9]\d*Z$/.test(text(b)) ? 1 : 0);
/** 100 ns after the first millisecond of `ms`. */
const justAfter = (ms: number) => iso(ms).replace(/Z$/, "0001Z");

async function summaryOf(shop: Shop, from?: Bound, to?: Bound): Promise<SummaryResponse> {
  const q = new URLSearchParams();
  if (from !== undefined) q.set("from", text(from));
  if (to !== undefined) q.set("to", text(to));
  const res = await api(shop.m.secretKey, `/v1/analytics/summary?${q}`);
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json<SummaryResponse>();
}

/** The default window (to: now, from: to − 7 days) of a request sent between `before` and `after`, rounded out. */
const defaultWindow = (before: number, after: number, from: number, to: number, floor: (ms: number) => number, ceil: (ms: number) => number) =>
  to >= ceil(before) && to <= ceil(after) && from >= floor(before - 7 * DAY) && from <= floor(after - 7 * DAY);

async function checkSummary(label: string, shop: Shop, from?: Bound, to?: Bound): Promise<string[]> {
  const before = Date.now();
  const got = await summaryOf(shop, from, to);
  // The covered window: from rounded down, to rounded up to hours; defaults (to: now, from: to − 7 days) from the echo.
  const coveredFrom = Date.parse(got.from);
  const coveredTo = Date.parse(got.to);
  const problems: string[] = [];
  if (to !== undefined && coveredTo !== ceilHour(ceilMs(to))) problems.push(`${label}: to echoed ${got.to}, expected ${key(ceilHour(ceilMs(to)))}`);
  if (to === undefined && from === undefined && !defaultWindow(before, Date.now(), coveredFrom, coveredTo, floorHour, ceilHour)) problems.push(`${label}: default window echoed ${got.from}..${got.to}`);
  if (to === undefined && from !== undefined && (coveredTo < ceilHour(before) || coveredTo > ceilHour(Date.now()))) problems.push(`${label}: default to echoed ${got.to}`);
  if (from !== undefined && coveredFrom !== floorHour(floorMs(from))) problems.push(`${label}: from echoed ${got.from}, expected ${key(floorHour(floorMs(from)))}`);
  const want = expectedSummary(shop, coveredFrom, coveredTo);
  problems.push(...compare(label, got, want.body));
  for (const arm of ["treatment", "holdout"] as const) {
    const exact = want.medians[arm];
    const median = got.arms[arm].median_time_to_pay_ms;
    if (exact === null ? median !== null : median === null || Math.abs(median - exact) > 0.005 * exact + 1) problems.push(`${label} arms.${arm}.median_time_to_pay_ms: got ${median}, expected ${exact} ± 0.5 %`);
  }
  // The lift's interval excludes 0 exactly when p < 0.05 (docs: same SE).
  for (const l of [got.lift.conversion_rate, got.lift.top1_rate]) {
    if (l.ci95 && l.p_value !== null && (l.ci95[0] > 0 || l.ci95[1] < 0) !== l.p_value < 0.05) problems.push(`${label}: interval ${l.ci95} and p ${l.p_value} disagree`);
  }
  return problems;
}

async function checkSeries(label: string, shop: Shop, q: { metric: Metric; granularity: "hour" | "day"; from?: Bound; to?: Bound; currency?: string }): Promise<string[]> {
  const before = Date.now();
  const params = new URLSearchParams({ metric: q.metric, granularity: q.granularity });
  if (q.from !== undefined) params.set("from", text(q.from));
  if (q.to !== undefined) params.set("to", text(q.to));
  if (q.currency !== undefined) params.set("currency", q.currency);
  const res = await api(shop.m.secretKey, `/v1/analytics/timeseries?${params}`);
  expect(res.status, await res.clone().text()).toBe(200);
  const got = await res.json<TimeseriesResponse & { from: string; to: string; currency?: string }>();
  const floor = q.granularity === "hour" ? floorHour : floorDay;
  const ceil = q.granularity === "hour" ? ceilHour : ceilDay;
  const from = Date.parse(got.from);
  const to = Date.parse(got.to);
  const problems: string[] = [];
  if (q.from !== undefined && from !== floor(floorMs(q.from))) problems.push(`${label}: from echoed ${got.from}`);
  if (q.to !== undefined && to !== ceil(ceilMs(q.to))) problems.push(`${label}: to echoed ${got.to}`);
  if (q.from === undefined && q.to === undefined && !defaultWindow(before, Date.now(), from, to, floor, ceil)) problems.push(`${label}: default window echoed ${got.from}..${got.to}`);
  if (got.metric !== q.metric || got.granularity !== q.granularity || got.currency !== q.currency) problems.push(`${label}: echoed ${got.metric} ${got.granularity} ${got.currency}`);
  problems.push(...compare(label, got.points, expectedPoints(shop, q.metric, q.granularity, from, to, q.currency)));
  return problems;
}

/** A few checks in the middle of the history: what has been stored so far, rolled up or not. */
async function midwayChecks(rng: Rng, shops: Shop[], now: number): Promise<string[]> {
  const shop = rng.pick(shops);
  return [
    ...(await checkSummary("midway summary, 41 days", shop, now - 41 * DAY)),
    ...(await checkSeries("midway daily conversions", shop, { metric: "conversions", granularity: "day", from: now - 41 * DAY })),
  ];
}

async function finalChecks(rng: Rng, shops: Shop[], now: number): Promise<string[]> {
  const problems: string[] = [];
  const randomWindow = (maxDays: number) => {
    const from = Math.floor(now - rng.uniform(0, 41) * DAY);
    return [from, Math.floor(Math.min(now + HOUR, from + rng.uniform(HOUR / 2, maxDays * DAY)))] as const;
  };
  for (const shop of shops) {
    const who = shop.m.merchantId;
    problems.push(...(await checkSummary(`${who} summary, default window`, shop)));
    problems.push(...(await checkSummary(`${who} summary, 41 days to now`, shop, now - 41 * DAY)));
    problems.push(...(await checkSummary(`${who} summary, the last 90 days`, shop, now - 90 * DAY, now)));
    problems.push(...(await checkSummary(`${who} summary, into the future`, shop, now - rng.uniform(0, 3) * DAY, now + rng.uniform(0, 3) * DAY)));
    problems.push(...(await checkSummary(`${who} summary, 41 days to the open hour`, shop, now - 41 * DAY, floorHour(now))));
    const aligned = floorHour(now - rng.uniform(1, 35) * DAY);
    problems.push(...(await checkSummary(`${who} summary, aligned past`, shop, aligned, aligned + rng.int(1, 6 * 24) * HOUR)));
    const [a, b] = randomWindow(30);
    problems.push(...(await checkSummary(`${who} summary, unaligned ${iso(a)}..${iso(b)}`, shop, a, b)));
    // Digits past the millisecond: a `to` 100 ns after an hour's first millisecond covers that hour
    // (and its row stamped at exactly that millisecond, which the window holds); two bounds in one millisecond are a window.
    const edge = floorHour((shop.decisions.find((d) => d.at % HOUR === 0 && d.at < floorHour(now)) ?? shop.decisions[0]!).at);
    problems.push(...(await checkSummary(`${who} summary, to 100 ns into ${iso(edge)}`, shop, edge - rng.int(1, 48) * HOUR, justAfter(edge))));
    problems.push(...(await checkSummary(`${who} summary, 100 ns to 200 ns into ${iso(edge)}`, shop, justAfter(edge), justAfter(edge).replace(/1Z$/, "2Z"))));
    problems.push(...(await checkSeries(`${who} daily decisions to 100 ns into ${iso(floorDay(edge))}`, shop, { metric: "decisions", granularity: "day", from: floorDay(edge) - 3 * DAY, to: justAfter(floorDay(edge)) })));
    problems.push(...(await checkSummary(`${who} summary, the open hour`, shop, floorHour(now) + rng.uniform(0, 1) * (now - floorHour(now)), now + MINUTE)));

    for (const metric of ["decisions", "conversions", "conversion_rate", "top1_rate"] as const) {
      problems.push(...(await checkSeries(`${who} daily ${metric}`, shop, { metric, granularity: "day", from: now - 41 * DAY })));
    }
    problems.push(...(await checkSeries(`${who} daily decisions, 90 days to 2 days ahead`, shop, { metric: "decisions", granularity: "day", from: now - 88 * DAY, to: now + 2 * DAY })));
    problems.push(...(await checkSeries(`${who} daily aov EUR`, shop, { metric: "aov", granularity: "day", from: now - 41 * DAY, currency: "EUR" })));
    const [h1, h2] = randomWindow(30);
    const hourly = rng.pick(["decisions", "conversions", "conversion_rate", "top1_rate"] as const);
    problems.push(...(await checkSeries(`${who} hourly ${hourly} ${iso(h1)}..${iso(h2)}`, shop, { metric: hourly, granularity: "hour", from: h1, to: h2 })));
    problems.push(...(await checkSeries(`${who} daily conversion_rate, default window`, shop, { metric: "conversion_rate", granularity: "day" })));
    problems.push(...(await checkSeries(`${who} hourly decisions, default window`, shop, { metric: "decisions", granularity: "hour" })));
    problems.push(...(await checkSeries(`${who} hourly aov USD, last 2 days`, shop, { metric: "aov", granularity: "hour", from: now - 2 * DAY, currency: "USD" })));
    const [d1, d2] = randomWindow(40);
    problems.push(...(await checkSeries(`${who} daily conversions with currency GBP`, shop, { metric: "conversions", granularity: "day", from: d1, to: d2, currency: "GBP" })));
    problems.push(...(await checkSeries(`${who} daily aov GBP ${iso(d1)}..${iso(d2)}`, shop, { metric: "aov", granularity: "day", from: d1, to: d2, currency: "GBP" })));
  }
  return problems;
}

async function runSeed(seed: number): Promise<string[]> {
  const rng = new Rng(seed);
  const now = Date.now();
  const shops = [await newShop(rng, seed, "a"), await newShop(rng, seed, "b")];
  const actions: Action[] = [];
  for (const [i, shop] of shops.entries()) actions.push(...(await generate(rng, seed, ["a", "b"][i]!, shop, now)));
  // The rollup cron at the times it would have run, and two reads along the way.
  const days = [...new Set(actions.map((a) => floorDay(a.at)))];
  for (let k = 0, n = rng.int(6, 12); k < n; k++) actions.push({ at: Math.floor(rng.chance(0.5) ? now - rng.uniform(0, 40) * DAY : rng.pick(days) + rng.uniform(0, DAY)), kind: "rollup" });
  for (let k = 0; k < 2; k++) actions.push({ at: Math.floor(now - rng.uniform(0, 30) * DAY), kind: "check" });
  actions.sort((x, y) => x.at - y.at);

  const problems: string[] = [];
  let analytics: { body: unknown; store: () => void }[] = [];
  let feedback: { shop: Shop; payments: Payment[] } | null = null;
  const flush = async () => {
    if (analytics.length > 0) {
      const result = await deliverAnalytics(analytics.map((a) => a.body));
      expect(result.retryMessages, "analytics consumer retried").toEqual([]);
      analytics.forEach((a) => a.store());
      analytics = [];
    }
    if (feedback) {
      const { shop, payments } = feedback;
      feedback = null;
      storePayments(shop, payments, await deliverFeedback(shop, payments));
    }
  };
  for (const action of actions) {
    switch (action.kind) {
      case "decision":
      case "impression": {
        if (feedback) await flush();
        if (action.kind === "decision" && !action.deliver) break;
        const body = action.kind === "decision" ? action.decision.message : await impressionMessage(action.shop, action.impression);
        analytics.push({ body, store: () => (action.kind === "decision" ? action.shop.decisions.push(action.decision) : storeImpression(action.shop, action.impression)) });
        if (analytics.length >= 100 || rng.chance(0.1)) await flush();
        break;
      }
      case "payment":
        if (analytics.length > 0 || (feedback && (feedback.shop !== action.shop || feedback.payments.some((p) => p.eventId === action.payment.eventId)))) await flush();
        feedback ??= { shop: action.shop, payments: [] };
        feedback.payments.push(action.payment);
        if (feedback.payments.length >= 100 || rng.chance(0.15)) await flush();
        break;
      case "rollup":
        await flush();
        await runAnalyticsRollups(env, new Date(action.at));
        break;
      case "check":
        await flush();
        problems.push(...(await midwayChecks(rng, shops, now)));
        break;
    }
  }
  await flush();

  // The current hour through the real routes, with some of its decisions paid at once (occurred_at: now).
  for (const [i, shop] of shops.entries()) {
    const live = await liveTraffic(rng, seed, ["a", "b"][i]!, shop);
    const result = await deliverAnalytics([...live.decisions.map((d) => d.message), ...(await Promise.all(live.impressions.map((imp) => impressionMessage(shop, imp))))]);
    expect(result.retryMessages).toEqual([]);
    shop.decisions.push(...live.decisions);
    live.impressions.forEach((imp) => storeImpression(shop, imp));
    const paid = live.decisions.filter((d) => d.customer !== null && rng.chance(0.6));
    if (paid.length > 0) {
      const payments = paid.map((d, k): Payment => ({ eventId: `ev_${seed}_live_${i}_${k}`, customer: d.customer!, method: d.ranked[rng.int(0, d.ranked.length - 1)]!, amount: rng.int(100, 9000), currency: rng.pick(CURRENCIES), occurredAt: Date.now() + (rng.chance(0.3) ? Math.floor(rng.uniform(0, 4 * MINUTE)) : 0), offerId: null, decision: d }));
      storePayments(shop, payments, await deliverFeedback(shop, payments));
    }
  }
  if (rng.chance(0.5)) await runAnalyticsRollups(env, new Date());
  problems.push(...(await finalChecks(rng, shops, now)));
  return problems;
}

describe("analytics against a plain recomputation of a generated history", () => {
  it.each(SEEDS)("seed %i: every number of the summary and the timeseries", async (seed) => {
    const problems = await runSeed(seed);
    expect(problems.slice(0, 30), `seed ${seed}: ${problems.length} mismatches`).toEqual([]);
  });
});

