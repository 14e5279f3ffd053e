import { env } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { loadFacts } from "../../src/analytics/load";
import { recomputeDayStatements } from "../../src/analytics/rollups";
import { buildSummary } from "../../src/analytics/summary";
import { bucketKey } from "../../src/analytics/timeBuckets";
import { customerRef } from "../../src/crypto/pseudonym";
import { signDecision } from "../../src/personalization/decision";
import type { SummaryResponse, TimeseriesResponse } from "../../src/schemas/analytics";
import type { FeedbackMessage } from "../../src/schemas/feedback";
import {
  deliverAnalytics,
  dumpRollups,
  getJson,
  makeDecision,
  offersShown,
  postFeedback,
  rollupCron,
  rollupRun,
  storeFeedback,
  type DecisionSpec,
} from "../helpers/analytics";
import { api, createMerchant, expectError, type TestMerchant } from "../helpers/fixtures";

const HOUR = 3_600_000;
const floorHour = (ms: number) => Math.floor(ms / HOUR) * HOUR;
const iso = (ms: number) => new Date(ms).toISOString();

/*
 * The scripted population of merchant A (holdout_percent 33).
 *
 * Closed hour B (two days ago) and the open hour O (now):
 *   treatment  t0..t12  personalized [apple_pay, visa, paypal]        cache hit t0..t8, miss t9..t12
 *              t13..t16 no_history   [visa, apple_pay, paypal]        cache miss
 *              t17      degraded     (all 7 methods)                  cache unknown
 *              to0,to1  (open hour) personalized [apple_pay, visa]    cache hit
 *   holdout    h0..h8   holdout      [visa, mastercard, apple_pay]    cache hit h0..h4, miss h5..h8
 *              ho0      (open hour) holdout                          cache miss
 *   no arm     x0, x1 personalization_disabled (miss); x2 customer_deleted; g0..g2 guests
 * → 36 decisions; treatment 20, holdout 10; personalized 15; cache 16 hits / 15 misses.
 *
 * Conversions (method, rank, amount, time to pay):
 *   t0..t7  apple_pay #1  USD 1000·(i+1)   10,20,30,40,42,50,60,70 s
 *   t8, t9  visa #2       USD 9000, 10000  80, 90 s
 *   t13     visa #1       EUR 3000         5 s
 *   to0     klarna (not ranked → 1/rank 0) EUR 5000  15 s   (open hour)
 *   h0      visa #1       USD 1000         30 s
 *   h1, h2  apple_pay #3  USD 2000, 4000   45, 60 s
 *   h3      mastercard #2 EUR 6000         120 s  (stored BEFORE its decision was written)
 * Noise that must not add conversions: t0's event redelivered, t1's event retried by the client
 * (same event_id), a second event for t2's decision (paypal, new event_id: a payment, no conversion),
 * the decision messages delivered twice. Also an unattributed payment (u0, google_pay, offer gpay_bonus)
 * and t3 redeems offer applepay_5off; both were shown their offer before paying.
 */
let A: TestMerchant;
let B: TestMerchant;
let nowMs: number;
let base: number;
let openAt: number;
const ids = new Map<string, string>();

const P = ["apple_pay", "visa", "paypal"];
const NH = ["visa", "apple_pay", "paypal"];
const ALL = ["visa", "mastercard", "apple_pay", "google_pay", "paypal", "klarna", "ideal"];
const HO = ["visa", "mastercard", "apple_pay"];

function population(): [string, Omit<DecisionSpec, "customer">][] {
  const at = (i: number) => base + i * 60_000;
  const rows: [string, Omit<DecisionSpec, "customer">][] = [];
  for (let i = 0; i <= 12; i++) rows.push([`t${i}`, { at: at(i), arm: "treatment", fallback: null, ranked: P, cache: i <= 8 ? "hit" : "miss" }]);
  for (let i = 13; i <= 16; i++) rows.push([`t${i}`, { at: at(i), arm: "treatment", fallback: "no_history", ranked: NH, cache: "miss" }]);
  rows.push(["t17", { at: at(17), arm: "treatment", fallback: "degraded", ranked: ALL, cache: null }]);
  rows.push(["to0", { at: openAt, arm: "treatment", fallback: null, ranked: ["apple_pay", "visa"], cache: "hit" }]);
  rows.push(["to1", { at: openAt, arm: "treatment", fallback: null, ranked: ["apple_pay", "visa"], cache: "hit" }]);
  for (let i = 0; i <= 8; i++) rows.push([`h${i}`, { at: at(20 + i), arm: "holdout", fallback: "holdout", ranked: HO, cache: i <= 4 ? "hit" : "miss" }]);
  rows.push(["ho0", { at: openAt, arm: "holdout", fallback: "holdout", ranked: HO, cache: "miss" }]);
  rows.push(["x0", { at: at(30), arm: null, fallback: "personalization_disabled", ranked: ALL, cache: "miss" }]);
  rows.push(["x1", { at: at(31), arm: null, fallback: "personalization_disabled", ranked: ALL, cache: "miss" }]);
  rows.push(["x2", { at: at(32), arm: null, fallback: "customer_deleted", ranked: ALL, cache: null }]);
  for (let i = 0; i < 3; i++) rows.push([`g${i}`, { at: at(33 + i), arm: null, fallback: "guest", ranked: ALL, cache: null }]);
  return rows;
}

/** [customer, method, amount, currency, time to pay in s] */
const CONVERSIONS: [string, string, number, string, number][] = [
  ...[10, 20, 30, 40, 42, 50, 60, 70].map((s, i) => [`t${i}`, "apple_pay", 1000 * (i + 1), "USD", s] as [string, string, number, string, number]),
  ["t8", "visa", 9000, "USD", 80],
  ["t9", "visa", 10000, "USD", 90],
  ["t13", "visa", 3000, "EUR", 5],
  ["to0", "klarna", 5000, "EUR", 15],
  ["h0", "visa", 1000, "USD", 30],
  ["h1", "apple_pay", 2000, "USD", 45],
  ["h2", "apple_pay", 4000, "USD", 60],
  ["h3", "mastercard", 6000, "EUR", 120],
];

const decidedAt = new Map<string, number>();

function feedbackBody(customer: string, method: string, amount: number, currency: string, ttpS: number, extra: Record<string, unknown> = {}) {
  return {
    customer_id: customer,
    method_id: method,
    amount,
    currency,
    event_id: `ev_${customer}`,
    decision_id: ids.get(customer),
    occurred_at: iso(decidedAt.get(customer)! + ttpS * 1000),
    ...extra,
  };
}

afterEach(() => vi.restoreAllMocks());

beforeAll(async () => {
  nowMs = Date.now();
  base = floorHour(nowMs) - 48 * HOUR;
  openAt = Math.max(floorHour(nowMs), nowMs - 30_000);
  A = await createMerchant({ holdout_percent: 33, features: { targeted_offers: true, cross_merchant: false } });
  B = await createMerchant({ holdout_percent: 10 });

  const decisions = new Map<string, Awaited<ReturnType<typeof makeDecision>>>();
  for (const [customer, spec] of population()) {
    const d = await makeDecision(A.merchantId, { customer: customer.startsWith("g") ? null : customer, ...spec });
    decisions.set(customer, d);
    ids.set(customer, d.id);
    decidedAt.set(customer, spec.at);
  }

  // h3 pays before its decision reaches D1 (the two queues race).
  const h3 = CONVERSIONS.find((c) => c[0] === "h3")!;
  await storeFeedback([await postFeedback(A, feedbackBody(...h3))]);

  // Decisions: one delivery with a duplicate inside, then the whole delivery again (redelivery).
  const early = [...decisions.entries()].filter(([c]) => c !== "h3").map(([, d]) => d.message);
  const first = [...early, decisions.get("t0")!.message];
  expect((await deliverAnalytics(first)).explicitAcks).toHaveLength(first.length);
  expect((await deliverAnalytics(first, 2)).explicitAcks).toHaveLength(first.length);
  await deliverAnalytics([decisions.get("h3")!.message]);

  // Conversions: one consumer batch, then the noise.
  const messages: FeedbackMessage[] = [];
  for (const c of CONVERSIONS.filter((c) => c[0] !== "h3")) {
    const offer = c[0] === "t3" ? { offer_id: "applepay_5off" } : {};
    messages.push(await postFeedback(A, feedbackBody(...c, offer)));
  }
  await storeFeedback(messages);
  await storeFeedback([messages[0]!]); // t0 redelivered
  const t1 = CONVERSIONS[1]!;
  await storeFeedback([await postFeedback(A, feedbackBody(...t1))]); // client retry, same event_id
  await storeFeedback([await postFeedback(A, feedbackBody("t2", "paypal", 700, "USD", 100, { event_id: "ev_t2_again" }))]);
  await storeFeedback([await postFeedback(A, { customer_id: "u0", method_id: "google_pay", amount: 1500, currency: "USD", offer_id: "gpay_bonus", event_id: "ev_u0", occurred_at: iso(base + 40 * 60_000) })]);

  // Offers shown: 4 offers in 3 answers; the last answer's message is delivered twice. u0 was shown
  // gpay_bonus (and paid with it 40 min later); t3 was shown applepay_5off before paying with it
  // (imp_2) and again after (imp_3, which that payment cannot redeem). They arrive after the payments.
  const imp3 = offersShown(A.merchantId, "imp_3", ["applepay_5off"], base + 5 * 60_000, await customerRef(env.PII_KEY, "t3"));
  await deliverAnalytics([
    offersShown(A.merchantId, "imp_1", ["applepay_5off", "gpay_bonus"], base, await customerRef(env.PII_KEY, "u0")),
    offersShown(A.merchantId, "imp_2", ["applepay_5off"], base + 60_000, await customerRef(env.PII_KEY, "t3")),
    imp3,
  ]);
  await deliverAnalytics([imp3], 2);

  // Merchant B: its own small experiment, in the same hours.
  const b: Awaited<ReturnType<typeof makeDecision>>[] = [];
  for (let i = 0; i < 4; i++) b.push(await makeDecision(B.merchantId, { customer: `t${i}`, at: base + i * 60_000, arm: i < 3 ? "treatment" : "holdout", fallback: i < 3 ? null : "holdout", ranked: ["paypal", "visa"] }));
  await deliverAnalytics(b.map((d) => d.message));
  await storeFeedback([await postFeedback(B, { customer_id: "t0", method_id: "paypal", amount: 99_900, currency: "USD", event_id: "ev_t0", decision_id: b[0]!.id, occurred_at: iso(base + 60_000) })]);

  await rollupCron();
});

const summaryOf = (m: TestMerchant, query = "") => getJson<SummaryResponse>(m.secretKey, `/v1/analytics/summary${query}`);

describe("GET /v1/analytics/summary — the scripted population", () => {
  it("counts decisions and conversions per arm exactly, whatever was redelivered", async () => {
    await rollupCron();
    const s = await summaryOf(A);
    expect(s.merchant_id).toBe(A.merchantId);
    expect(s.holdout_percent).toBe(33);
    expect(s.arms.treatment).toMatchObject({ decisions: 20, conversions: 12, conversion_rate: 0.6, top1_rate: 0.75 });
    expect(s.arms.holdout).toMatchObject({ decisions: 10, conversions: 4, conversion_rate: 0.4, top1_rate: 0.25 });
    // mrr: treatment (9·1 + 2·½ + 0) / 12; holdout (1 + 2·⅓ + ½) / 4
    expect(s.arms.treatment.mrr).toBeCloseTo(10 / 12, 12);
    expect(s.arms.holdout.mrr).toBeCloseTo((1 + 2 / 3 + 1 / 2) / 4, 12);
  });

  it("medians of time to pay (histogram bins: within 0.5 %)", async () => {
    const s = await summaryOf(A);
    // treatment: 5,10,15,20,30,40 | 42,50,60,70,80,90 s → (40 + 42) / 2 = 41 s; holdout: 30,45 | 60,120 → 52.5 s
    expect(Math.abs(s.arms.treatment.median_time_to_pay_ms! - 41_000)).toBeLessThan(41_000 * 0.005);
    expect(Math.abs(s.arms.holdout.median_time_to_pay_ms! - 52_500)).toBeLessThan(52_500 * 0.005);
  });

  it("lift of conversion rate and top-1 rate with the log-scale (Katz) CI and p-value worked by hand", async () => {
    const s = await summaryOf(A);
    // Conversion rate: p_t = 12/20 = 0.6, p_h = 4/10 = 0.4, R = 1.5 → relative 0.5.
    // Var(ln R) = 0.4/(20·0.6) + 0.6/(10·0.4) = 0.0333333 + 0.15 = 0.1833333; SE = √0.1833333 = 0.4281744
    // ln R = 0.4054651; ln R ± 1.959964 · 0.4281744 = 0.4054651 ± 0.8392064 → CI = exp(…) − 1 = [−0.3519201, 2.4717943]
    // z = 0.4054651 / 0.4281744 = 0.9469625 → p = 2·(1 − Φ(0.9469625)) = 0.3436579
    const cr = s.lift.conversion_rate;
    expect(cr.relative).toBeCloseTo(0.5, 10);
    expect(cr.ci95![0]).toBeCloseTo(-0.3519201, 6);
    expect(cr.ci95![1]).toBeCloseTo(2.4717943, 6);
    expect(cr.p_value).toBeCloseTo(0.3436579, 6);
    // Top-1: 9/12 = 0.75 vs 1/4 = 0.25, R = 3 → relative 2.
    // Var(ln R) = 0.25/(12·0.75) + 0.75/(4·0.25) = 0.0277778 + 0.75 = 0.7777778; SE = 0.8819171
    // CI = exp(1.0986123 ± 1.7285258) − 1 = [−0.4673621, 15.8970331]; z = 1.2457092 → p = 0.2128712
    const top1 = s.lift.top1_rate;
    expect(top1.relative).toBeCloseTo(2, 10);
    expect(top1.ci95![0]).toBeCloseTo(-0.4673621, 6);
    expect(top1.ci95![1]).toBeCloseTo(15.8970331, 5);
    expect(top1.p_value).toBeCloseTo(0.2128712, 6);
  });

  it("SRM of 10 holdout in 30 against 33 %: no warning", async () => {
    const s = await summaryOf(A);
    // χ² = (10 − 9.9)²/9.9 + (20 − 20.1)²/20.1 = 0.0015076 → p = 0.96903
    expect(s.srm.expected_holdout_share).toBe(0.33);
    expect(s.srm.observed_holdout_share).toBeCloseTo(1 / 3, 12);
    expect(s.srm.p_value).toBeCloseTo(0.96903, 4);
    expect(s.srm.warning).toBe(false);
  });

  it("AOV per currency and arm, never across currencies", async () => {
    const s = await summaryOf(A);
    // treatment USD (1000+…+8000 + 9000 + 10000) / 10 = 5500; EUR (3000 + 5000) / 2 = 4000
    // holdout USD (1000 + 2000 + 4000) / 3 = 2333.3 → 2333; EUR 6000
    expect(s.aov).toEqual([
      { currency: "EUR", treatment: 4000, holdout: 6000 },
      { currency: "USD", treatment: 5500, holdout: 2333 },
    ]);
  });

  it("method distribution covers every payment, attributed or not", async () => {
    const s = await summaryOf(A);
    // 16 conversions + t2's second payment (paypal) + u0 (google_pay) = 18 payments
    expect(s.methods.map((m) => [m.method_id, m.payments])).toEqual([
      ["apple_pay", 10], ["visa", 4], ["google_pay", 1], ["klarna", 1], ["mastercard", 1], ["paypal", 1],
    ]);
    const byId = Object.fromEntries(s.methods.map((m) => [m.method_id, m]));
    expect(byId.apple_pay).toMatchObject({ share: 10 / 18, treatment_share: 8 / 12, holdout_share: 2 / 4 });
    expect(byId.visa).toMatchObject({ share: 4 / 18, treatment_share: 3 / 12, holdout_share: 1 / 4 });
    expect(byId.klarna).toMatchObject({ share: 1 / 18, treatment_share: 1 / 12, holdout_share: 0 });
    expect(byId.paypal).toMatchObject({ share: 1 / 18, treatment_share: 0, holdout_share: 0 });
  });

  it("offers, personalization rate, cache hit rate and fallbacks", async () => {
    const s = await summaryOf(A);
    expect(s.offers).toEqual({ shown: 4, redeemed: 2, redemption_rate: 0.5 });
    expect(s.personalization_rate).toBeCloseTo(15 / 36, 12);
    expect(s.cache_hit_rate).toBeCloseTo(16 / 31, 12);
    expect(s.fallbacks).toEqual({ no_history: 4, degraded: 1, holdout: 10, personalization_disabled: 2, customer_deleted: 1, guest: 3 });
  });

  it("fallbacks always name every reason, 0 when none (a merchant without data, one with only guests)", async () => {
    const zero = { no_history: 0, personalization_disabled: 0, holdout: 0, customer_deleted: 0, guest: 0, degraded: 0 };
    const empty = await createMerchant();
    expect((await getJson<SummaryResponse>(empty.secretKey, "/v1/analytics/summary")).fallbacks).toEqual(zero);
    const guests = await createMerchant();
    const d = await makeDecision(guests.merchantId, { customer: null, at: Date.now() - 60_000, arm: null, fallback: "guest", ranked: ["visa"] });
    await deliverAnalytics([d.message]);
    expect((await getJson<SummaryResponse>(guests.secretKey, "/v1/analytics/summary")).fallbacks).toEqual({ ...zero, guest: 1 });
  });

  it("stored each decision and each conversion once", async () => {
    const count = async (table: string) =>
      (await env.DB.prepare(`SELECT count(*) AS n FROM ${table} WHERE merchant_id = ?`).bind(A.merchantId).first<{ n: number }>())!.n;
    expect(await count("analytics_decisions")).toBe(36);
    expect(await count("analytics_conversions")).toBe(16);
    expect(await count("analytics_offer_impressions")).toBe(4);
    expect(await count("usage_events")).toBe(18);
  });
});

describe("forged and foreign decision ids", () => {
  it("are a 400 on feedback, and change no number", async () => {
    const before = await summaryOf(A);
    const wrongKey = await signDecision("not-the-signing-key", { m: A.merchantId, a: "treatment", f: null, r: ["visa"], t: nowMs });
    const foreign = await signDecision(env.SIGNING_KEY, { m: B.merchantId, a: "treatment", f: null, r: ["visa"], t: nowMs });
    const genuine = ids.get("t11")!;
    const tampered = genuine.replace(/^dec_./, (p) => (p.endsWith("A") ? "dec_B" : "dec_A"));
    // The signature's last character carries 4 unused bits: another value of them is another spelling
    // of the same bytes, which would count as a second conversion of the decision (keyed by its text).
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const respelled = genuine.slice(0, -1) + alphabet[alphabet.indexOf(genuine.at(-1)!) ^ 1]!;
    for (const decision_id of ["dec_garbage", wrongKey, foreign, tampered, respelled]) {
      const res = await api(A.secretKey, "/v1/personalize/feedback", {
        method: "POST",
        body: JSON.stringify({ customer_id: "t11", method_id: "visa", decision_id, event_id: "ev_forged" }),
      });
      const body = await expectError(res, 400, "VALIDATION_ERROR");
      expect(body.error.details).toEqual([{ path: "decision_id", message: "is not a decision id issued to this merchant" }]);
    }
    await rollupCron();
    expect(await summaryOf(A)).toEqual(before);
  });
});

describe("lift while an arm has more conversions than stored decisions (the decisions' queue behind, or records lost)", () => {
  it("the interval and p-value are numbers or null, never NaN (ci95 [null, null])", async () => {
    const m = await createMerchant({ holdout_percent: 20 });
    const at = Date.now() - 60_000;
    const t = [];
    for (let i = 0; i < 10; i++) t.push(await makeDecision(m.merchantId, { customer: `pt${i}`, at, arm: "treatment", fallback: null, ranked: ["visa", "paypal"] }));
    await deliverAnalytics(t.map((d) => d.message));
    // Four holdout decisions convert; only one of their records has reached D1.
    const h = [];
    for (let i = 0; i < 4; i++) h.push(await makeDecision(m.merchantId, { customer: `ph${i}`, at, arm: "holdout", fallback: "holdout", ranked: ["visa", "paypal"] }));
    await deliverAnalytics([h[0]!.message]);
    const paid = [];
    for (let i = 0; i < 5; i++) paid.push(await postFeedback(m, { customer_id: `pt${i}`, method_id: "visa", event_id: `e_t${i}`, decision_id: t[i]!.id }));
    for (let i = 0; i < 4; i++) paid.push(await postFeedback(m, { customer_id: `ph${i}`, method_id: "visa", event_id: `e_h${i}`, decision_id: h[i]!.id }));
    await storeFeedback(paid);

    const s = await getJson<SummaryResponse>(m.secretKey, "/v1/analytics/summary");
    expect(s.arms.holdout).toMatchObject({ decisions: 1, conversions: 4 });
    const lift = s.lift.conversion_rate;
    // Holdout capped at a rate of 1: treatment's 0.5 is a lift of -0.5, with a real interval around it.
    expect(lift.relative).toBeCloseTo(-0.5, 12);
    expect(lift.ci95).not.toBeNull();
    expect(lift.ci95!.every((v) => Number.isFinite(v))).toBe(true);
    expect(lift.ci95![0]).toBeLessThan(-0.5);
    expect(typeof lift.p_value).toBe("number");
  });
});

describe("tenancy", () => {
  it("two merchants never see each other's numbers", async () => {
    const b = await summaryOf(B);
    expect(b.merchant_id).toBe(B.merchantId);
    expect(b.arms.treatment).toMatchObject({ decisions: 3, conversions: 1 });
    expect(b.arms.holdout).toMatchObject({ decisions: 1, conversions: 0 });
    expect(b.aov).toEqual([{ currency: "USD", treatment: 99_900, holdout: null }]);
    expect(b.methods.map((m) => m.method_id)).toEqual(["paypal"]);
    expect(b.offers).toEqual({ shown: 0, redeemed: 0, redemption_rate: null });
    const a = await summaryOf(A);
    expect(a.arms.treatment.decisions).toBe(20);
    expect(a.methods.find((m) => m.method_id === "paypal")!.payments).toBe(1);
  });

  it("a key asking for another merchant is refused; a publishable key is refused", async () => {
    await expectError(await api(B.secretKey, `/v1/analytics/summary?merchant_id=${A.merchantId}`), 403, "MERCHANT_MISMATCH");
    await expectError(await api(A.publishableKey, "/v1/analytics/summary"), 403, "KEY_NOT_ALLOWED");
    await expectError(await api(A.publishableKey, "/v1/analytics/timeseries?metric=decisions"), 403, "KEY_NOT_ALLOWED");
    await expectError(await api(null, "/v1/analytics/summary"), 401, "MISSING_API_KEY");
  });
});

describe("rollups", () => {
  it("closed hours from rollups plus the open hour from raw rows equal raw rows only", async () => {
    await rollupCron();
    const from = floorHour(nowMs) - 7 * 24 * HOUR;
    const to = floorHour(Date.now()) + HOUR;
    const names = ["decisions", "conversions", "ttp", "payments", "offers"] as const;
    const meta = { merchant_id: A.merchantId, from: "f", to: "t", holdout_percent: 33 };
    const mixed = await loadFacts(env.DB, A.merchantId, from, to, Date.now(), [...names], { useDaily: true });
    const hourly = await loadFacts(env.DB, A.merchantId, from, to, Date.now(), [...names], { useDaily: false });
    const raw = await loadFacts(env.DB, A.merchantId, from, to, from, [...names], { useDaily: false }); // "now" = from: every row is raw
    expect(buildSummary(meta, mixed)).toEqual(buildSummary(meta, raw));
    expect(buildSummary(meta, hourly)).toEqual(buildSummary(meta, raw));
    expect(mixed.decisions.length).toBeGreaterThan(0);
  });

  it("recomputing is idempotent: twice, or forced on clean buckets, gives the same rows and numbers", async () => {
    // One clock for the runs and for the check of what they left dirty: were the hour to turn in
    // between, the open hour's decisions (to0, to1, ho0) would be a closed hour no run had reached.
    const now = Date.now();
    await rollupCron(now);
    const before = await dumpRollups(A.merchantId);
    const summary = await summaryOf(A);
    await rollupCron(now);
    await rollupCron(now);
    const day = Math.floor(base / (24 * HOUR)) * 24 * HOUR;
    const forceDirty = () =>
      env.DB.prepare("INSERT OR IGNORE INTO analytics_dirty_hours (merchant_id, hour) VALUES (?1, ?2), (?1, ?3)").bind(A.merchantId, bucketKey(base), bucketKey(base + HOUR)).run();
    for (let i = 0; i < 2; i++) {
      await forceDirty();
      await env.DB.batch(recomputeDayStatements(env.DB, day, [base, base + HOUR]));
    }
    expect(await dumpRollups(A.merchantId)).toEqual(before);
    expect(await summaryOf(A)).toEqual(summary);
    expect(before.analytics_decision_rollups!.length).toBeGreaterThan(0);
    const dirty = await env.DB.prepare("SELECT count(*) AS n FROM analytics_dirty_hours WHERE merchant_id = ? AND hour < ?").bind(A.merchantId, iso(floorHour(now))).first<{ n: number }>();
    expect(dirty!.n).toBe(0);
  });
});

describe("closed hours the rollup job has not reached yet", () => {
  it("a just-closed hour and a late conversion count at once, from raw rows, and the same once rolled up", async () => {
    const shop = await createMerchant({ holdout_percent: 0 });
    await rollupCron(); // everything before is rolled up: what follows is dirty until the next run
    const hour = floorHour(Date.now()) - 3 * HOUR; // a closed hour, not rolled up yet
    const decisions = [];
    for (let i = 0; i < 3; i++) decisions.push(await makeDecision(shop.merchantId, { customer: `late${i}`, at: hour + i * 60_000, arm: "treatment", fallback: null, ranked: ["visa", "paypal"] }));
    await deliverAnalytics(decisions.map((d) => d.message));
    const range = `?from=${iso(hour - 24 * HOUR)}&to=${iso(floorHour(Date.now()) + HOUR)}`.replace(/\.000Z/g, "Z");
    const before = await summaryOf(shop, range);
    expect(before.arms.treatment).toMatchObject({ decisions: 3, conversions: 0 });

    // A late conversion of a decision in that closed hour: counted before any rollup run.
    await storeFeedback([await postFeedback(shop, { customer_id: "late1", method_id: "paypal", amount: 500, currency: "USD", event_id: "ev_late1", decision_id: decisions[1]!.id, occurred_at: iso(hour + 2 * 60_000) })]);
    const converted = await summaryOf(shop, range);
    expect(converted.arms.treatment).toMatchObject({ decisions: 3, conversions: 1, top1_rate: 0 });
    const ts = await getJson<TimeseriesResponse>(shop.secretKey, `/v1/analytics/timeseries${range}&metric=conversions&granularity=day`);
    expect(ts.points.reduce((n, p) => n + (p.treatment ?? 0), 0)).toBe(1);

    await rollupCron();
    expect(await summaryOf(shop, range)).toEqual(converted);
  });

  it("many stale hours across days (more rollup ranges than D1's 5 compound terms) still read every hour once", async () => {
    await rollupCron();
    const from = floorHour(nowMs) - 7 * 24 * HOUR;
    const to = floorHour(Date.now()) + HOUR;
    const marks = [base - 30 * HOUR, base - 2 * HOUR, base, base + 5 * HOUR, base + 30 * HOUR, base + 31 * HOUR].filter((h) => h >= from && h < floorHour(Date.now()));
    for (const h of marks) await env.DB.prepare("INSERT OR IGNORE INTO analytics_dirty_hours (merchant_id, hour) VALUES (?, ?)").bind(A.merchantId, bucketKey(h)).run();
    const names = ["decisions", "conversions", "ttp", "payments", "offers"] as const;
    const meta = { merchant_id: A.merchantId, from: "f", to: "t", holdout_percent: 33 };
    const mixed = await loadFacts(env.DB, A.merchantId, from, to, Date.now(), [...names], { useDaily: true });
    const raw = await loadFacts(env.DB, A.merchantId, from, to, from, [...names], { useDaily: false });
    expect(buildSummary(meta, mixed)).toEqual(buildSummary(meta, raw));
    await rollupCron();
  });
});

describe("rows stored while a read is planned", () => {
  /**
   * Runs `interfere` once, right after the read of the merchant's dirty marks that plans a window
   * and before the window's batch: a decision or conversion the analytics or feedback consumer
   * commits in that gap.
   */
  function storeAfterThePlan(interfere: () => Promise<unknown>) {
    const prepare = env.DB.prepare.bind(env.DB);
    let left = 1;
    return vi.spyOn(env.DB, "prepare").mockImplementation((sql: string) => {
      const stmt = prepare(sql);
      if (!sql.startsWith("SELECT hour FROM analytics_dirty_hours WHERE merchant_id = ?1")) return stmt;
      const bind = stmt.bind.bind(stmt);
      stmt.bind = (...values: unknown[]) => {
        const bound = bind(...values);
        const all = bound.all.bind(bound);
        bound.all = (async () => {
          const result = await all();
          if (left > 0) {
            left -= 1;
            await interfere();
          }
          return result;
        }) as typeof bound.all;
        return bound;
      };
      return stmt;
    });
  }

  it("a decision stored in a rolled-up hour between the plan and the read counts in that answer, with its conversion, once", async () => {
    const shop = await createMerchant({ holdout_percent: 0 });
    const hour = floorHour(Date.now()) - 5 * HOUR; // closed, rolled up below
    const first = await makeDecision(shop.merchantId, { customer: "gap0", at: hour + 60_000, arm: "treatment", fallback: null, ranked: ["visa", "paypal"] });
    await deliverAnalytics([first.message]);
    await rollupCron();
    const range = `?from=${iso(hour - 24 * HOUR)}&to=${iso(floorHour(Date.now()) + HOUR)}`.replace(/\.000Z/g, "Z");
    expect((await summaryOf(shop, range)).arms.treatment).toMatchObject({ decisions: 1, conversions: 0 });

    // A decision of that hour (a delayed queue) and its payment land while the summary is planned.
    const late = await makeDecision(shop.merchantId, { customer: "gap1", at: hour + 120_000, arm: "treatment", fallback: null, ranked: ["visa", "paypal"] });
    const payment = await postFeedback(shop, { customer_id: "gap1", method_id: "visa", amount: 700, currency: "USD", event_id: "ev_gap1", decision_id: late.id, occurred_at: iso(hour + 180_000) });
    const gap = storeAfterThePlan(async () => {
      await deliverAnalytics([late.message]);
      await storeFeedback([payment]);
    });
    let raced: SummaryResponse;
    try {
      raced = await summaryOf(shop, range);
    } finally {
      gap.mockRestore();
    }
    expect(raced.arms.treatment).toMatchObject({ decisions: 2, conversions: 1, top1_rate: 1 });
    expect(raced.methods).toEqual([expect.objectContaining({ method_id: "visa", payments: 1 })]);
    await rollupCron();
    expect(await summaryOf(shop, range)).toEqual(raced);
  });

  it("hours turning dirty before every read: three reads at most, then the last one's answer", async () => {
    const shop = await createMerchant({ holdout_percent: 0 });
    const hour = floorHour(Date.now()) - 8 * HOUR;
    await deliverAnalytics([(await makeDecision(shop.merchantId, { customer: "busy", at: hour + 60_000, arm: "treatment", fallback: null, ranked: ["visa"] })).message]);
    await rollupCron();
    // Before each batch of the read, another rolled-up hour gets a dirty mark its plan did not have.
    let reads = 0;
    const batch = env.DB.batch.bind(env.DB);
    const spy = vi.spyOn(env.DB, "batch").mockImplementation(async (statements) => {
      reads += 1;
      await env.DB.prepare("INSERT INTO analytics_dirty_hours (merchant_id, hour) VALUES (?, ?)").bind(shop.merchantId, bucketKey(hour + reads * HOUR)).run();
      return batch(statements);
    });
    let facts;
    try {
      facts = await loadFacts(env.DB, shop.merchantId, hour - HOUR, floorHour(Date.now()) + HOUR, Date.now(), ["decisions"], { useDaily: false });
    } finally {
      spy.mockRestore();
    }
    expect(reads).toBe(3);
    expect(facts.decisions.reduce((sum, r) => sum + Number(r.decisions), 0)).toBe(1);
    await rollupCron();
  });
});

describe("a backlog: more stale runs than a read takes raw one by one", () => {
  it("decisions of 6 closed hours apart, delivered at once (a drained analytics queue), count before the next run, in the summary and the hourly series", async () => {
    const shop = await createMerchant({ holdout_percent: 0 });
    await rollupCron();
    const first = floorHour(Date.now()) - 14 * HOUR;
    const decisions = [];
    for (let k = 0; k < 6; k++) decisions.push(await makeDecision(shop.merchantId, { customer: `q${k}`, at: first + 2 * k * HOUR + 60_000, arm: "treatment", fallback: null, ranked: ["visa"] }));
    await deliverAnalytics(decisions.map((d) => d.message));
    const range = `?from=${iso(first)}&to=${iso(floorHour(Date.now()) + HOUR)}`.replace(/\.000Z/g, "Z");
    const counted = async () => {
      const ts = await getJson<TimeseriesResponse>(shop.secretKey, `/v1/analytics/timeseries${range}&metric=decisions&granularity=hour`);
      return [(await summaryOf(shop, range)).arms.treatment.decisions, ts.points.reduce((n, p) => n + (p.treatment ?? 0), 0)];
    };
    expect(await counted()).toEqual([6, 6]);
    await rollupCron();
    expect(await counted()).toEqual([6, 6]);
  });

  it("60 days of imported payments (one a day) count in full before any rollup run and after each run of the backlog", async () => {
    const shop = await createMerchant({ holdout_percent: 0 });
    await rollupCron();
    const now = Date.now();
    const start = Math.floor(now / (24 * HOUR)) * 24 * HOUR - 60 * 24 * HOUR + 12 * HOUR;
    const messages = [];
    for (let i = 0; i < 60; i++) {
      messages.push(await postFeedback(shop, { customer_id: `h${i % 7}`, method_id: "visa", amount: 1000, currency: "USD", event_id: `imp_${i}`, occurred_at: iso(start + i * 24 * HOUR) }));
    }
    await storeFeedback(messages);
    const payments = async () => {
      const s = await summaryOf(shop, `?from=${iso(start - HOUR)}&to=${iso(now)}`.replace(/\.\d{3}Z/g, "Z"));
      return s.methods.reduce((n, m) => n + m.payments, 0);
    };
    const seen = [await payments()];
    // The rollup job's share of queries fits ~28 such days a run: the backlog takes three.
    for (let run = 0; run < 3; run++) {
      await rollupRun();
      seen.push(await payments());
    }
    expect(seen).toEqual([60, 60, 60, 60]);
    await rollupCron();
  }, 60_000);
});

describe("SRM when holdout_percent changed inside the window", () => {
  /*
   * Merchant at 30 % now. In one closed hour: 600 decisions assigned at 10 % (60 holdout), 400 at
   * 30 % (120 holdout), and 100 recorded before the percent was stored (30 holdout; they count with
   * the current 30 %). Expected share = (600·10 + 400·30 + 100·30) / 1100 / 100 = 21/110, observed
   * 210/1100 = 21/110: no mismatch. Against the current 30 % alone it would be χ² ≈ 55, a warning.
   */
  it("expects the decision-weighted mean of the percent in force at each decision, from raw rows and rollups alike", async () => {
    const shop = await createMerchant({ holdout_percent: 30 });
    const hour = floorHour(Date.now()) - 5 * HOUR;
    const messages = [];
    const groups: [number, number, number | undefined][] = [[600, 60, 10], [400, 120, 30], [100, 30, undefined]];
    let i = 0;
    for (const [n, holdout, holdoutPercent] of groups) {
      for (let k = 0; k < n; k++, i++) {
        const arm = k < holdout ? "holdout" : "treatment";
        const spec: DecisionSpec = { customer: `srm${i}`, at: hour + (i % 3600) * 1000, arm, fallback: arm === "holdout" ? "holdout" : null, ranked: ["visa"], holdoutPercent };
        messages.push((await makeDecision(shop.merchantId, spec)).message);
      }
    }
    // A guest decision has no arm and does not count in the SRM, whatever its percent.
    messages.push((await makeDecision(shop.merchantId, { customer: null, at: hour, arm: null, fallback: "guest", ranked: ["visa"], holdoutPercent: 50 })).message);
    for (let k = 0; k < messages.length; k += 100) await deliverAnalytics(messages.slice(k, k + 100));
    const range = `?from=${iso(hour)}&to=${iso(hour + HOUR)}`.replace(/\.000Z/g, "Z");

    const check = (s: SummaryResponse) => {
      expect(s.holdout_percent).toBe(30);
      expect(s.arms.holdout.decisions).toBe(210);
      expect(s.arms.treatment.decisions).toBe(890);
      expect(s.srm.expected_holdout_share).toBeCloseTo(21 / 110, 12);
      expect(s.srm.observed_holdout_share).toBeCloseTo(21 / 110, 12);
      expect(s.srm.p_value).toBeCloseTo(1, 6);
      expect(s.srm.warning).toBe(false);
    };
    const raw = await summaryOf(shop, range); // the hour is dirty: raw rows
    check(raw);
    await rollupCron();
    const rolled = await summaryOf(shop, range);
    check(rolled);
    expect(rolled).toEqual(raw);
    const rows = await env.DB.prepare("SELECT sum(holdout_ppm_sum) AS ppm, sum(holdout_known) AS known FROM analytics_decision_rollups WHERE merchant_id = ? AND grain = 'h' AND arm != ''").bind(shop.merchantId).first();
    expect(rows).toEqual({ ppm: 600 * 100_000 + 400 * 300_000, known: 1000 });
    // The daily rollup carries the same sums (a daily series reads it).
    const day = await env.DB.prepare("SELECT sum(holdout_ppm_sum) AS ppm, sum(holdout_known) AS known FROM analytics_decision_rollups WHERE merchant_id = ? AND grain = 'd' AND arm != ''").bind(shop.merchantId).first();
    expect(day).toEqual(rows);
  });
});

describe("offer redemptions", () => {
  /*
   * Hour H (closed, 30 h ago), offer o1 unless said. Impressions → payments with that offer_id:
   *   c1 shown [o1, o2] at H+1m → pays o1 at H+2m and again at H+3m     one redemption (o1)
   *   c2 never shown            → pays o1 at H+2m                       none
   *   c3 never shown            → pays "nope" at H+2m                   none (no such offer)
   *   c4 shown at H+1m and H+4m → pays at H+5m                          the H+4m impression only
   *   c5 shown at H+10m         → pays at H+4m (6 min before it was    none (beyond the 5-minute
   *                                  shown)                               clock-skew bound)
   *   c7 shown at H+10m         → pays at H+1h30m                       the H+10m impression
   *   c8 shown at H+20m         → pays 25 h later                       none (window: 1 day)
   *   a guest shown at H+2m; c9 pays at H+3m                            none (nobody to match)
   * → shown 8, redeemed 3, although 9 payments carry an offer_id (all stored).
   */
  it("count only offers shown to that customer before the payment, once each; rollups and raw rows agree", async () => {
    const shop = await createMerchant();
    const H = floorHour(Date.now()) - 30 * HOUR;
    const m = (min: number) => H + min * 60_000;
    const ref = (c: string) => customerRef(env.PII_KEY, c);
    await deliverAnalytics([
      offersShown(shop.merchantId, "imp_a", ["o1", "o2"], m(1), await ref("c1")),
      offersShown(shop.merchantId, "imp_b", ["o1"], m(1), await ref("c4")),
      offersShown(shop.merchantId, "imp_c", ["o1"], m(4), await ref("c4")),
      offersShown(shop.merchantId, "imp_d", ["o1"], m(10), await ref("c5")),
      offersShown(shop.merchantId, "imp_e", ["o1"], m(10), await ref("c7")),
      offersShown(shop.merchantId, "imp_g", ["o1"], m(20), await ref("c8")),
      offersShown(shop.merchantId, "imp_h", ["o1"], m(2), null),
    ]);
    const pay = async (customer: string, at: number, offer = "o1", event = `ev_${customer}_${at}`) =>
      storeFeedback([await postFeedback(shop, { customer_id: customer, method_id: "visa", offer_id: offer, event_id: event, occurred_at: iso(at) })]);
    await pay("c1", m(2));
    await pay("c1", m(3));
    await pay("c2", m(2));
    await pay("c3", m(2), "nope");
    await pay("c4", m(5));
    await pay("c5", m(4));
    await pay("c7", m(90));
    await pay("c8", m(20) + 25 * HOUR);
    await pay("c9", m(3));
    const stored = await env.DB.prepare("SELECT count(*) AS n FROM usage_events WHERE merchant_id = ? AND offer_id IS NOT NULL").bind(shop.merchantId).first<number>("n");
    expect(stored).toBe(9);

    const range = `?from=${iso(H)}&to=${iso(floorHour(Date.now()) + HOUR)}`.replace(/\.000Z/g, "Z");
    const expectBothPaths = async (offers: SummaryResponse["offers"]) => {
      // Raw rows first (the hours are dirty), then the same from the rollups.
      expect((await summaryOf(shop, range)).offers).toEqual(offers);
      await rollupCron();
      expect((await summaryOf(shop, range)).offers).toEqual(offers);
      const names = ["offers"] as const;
      const meta = { merchant_id: shop.merchantId, from: "f", to: "t", holdout_percent: 0 };
      const from = H;
      const to = floorHour(Date.now()) + HOUR;
      const rolled = await loadFacts(env.DB, shop.merchantId, from, to, Date.now(), [...names], { useDaily: false });
      const raw = await loadFacts(env.DB, shop.merchantId, from, to, from, [...names], { useDaily: false });
      expect(buildSummary(meta, { ...rolled, decisions: [], conversions: [], ttp: [], payments: [] }).offers).toEqual(offers);
      expect(buildSummary(meta, { ...raw, decisions: [], conversions: [], ttp: [], payments: [] }).offers).toEqual(offers);
    };
    await expectBothPaths({ shown: 8, redeemed: 3, redemption_rate: 3 / 8 });
    const hourRows = async (hour: number) =>
      (await env.DB.prepare("SELECT offer_id, shown, redeemed FROM analytics_offer_rollups WHERE merchant_id = ? AND grain = 'h' AND bucket = ? ORDER BY offer_id").bind(shop.merchantId, bucketKey(hour)).all()).results;
    expect(await hourRows(H)).toEqual([{ offer_id: "o1", shown: 7, redeemed: 3 }, { offer_id: "o2", shown: 1, redeemed: 0 }]);

    // Late arrivals after the rollup, each changing the clean hour H from another hour (triggers of
    // migration 0010 mark H). c7 is shown o1 again at H+70m (the analytics queue was slow): its
    // payment at H+90m now redeems that impression (hour H+1), no longer the one of H+10m.
    await deliverAnalytics([offersShown(shop.merchantId, "imp_f", ["o1"], m(70), await ref("c7"))]);
    await expectBothPaths({ shown: 9, redeemed: 3, redemption_rate: 3 / 9 });
    expect(await hourRows(H)).toEqual([{ offer_id: "o1", shown: 7, redeemed: 2 }, { offer_id: "o2", shown: 1, redeemed: 0 }]);
    // c5 pays at H+65m, after its impression of H+10m (hour H), which is now redeemed.
    await pay("c5", m(65));
    await expectBothPaths({ shown: 9, redeemed: 4, redemption_rate: 4 / 9 });
    expect(await hourRows(H)).toEqual([{ offer_id: "o1", shown: 7, redeemed: 3 }, { offer_id: "o2", shown: 1, redeemed: 0 }]);
    expect(await hourRows(H + HOUR)).toEqual([{ offer_id: "o1", shown: 1, redeemed: 1 }]);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM usage_events WHERE merchant_id = ? AND offer_id IS NOT NULL").bind(shop.merchantId).first<number>("n")).toBe(10);
  });
});

describe("offer redemptions and a merchant clock behind ours (5-minute skew bound)", () => {
  /*
   * shown_at is our clock, occurred_at the merchant's. H: a closed hour 30 h ago, offer o1.
   *   k1 shown at H+10m            → pays 3 s before (H+10m − 3 s)          redeemed (hour H)
   *   k2 shown at H+10m            → pays exactly 5 min before              redeemed (hour H)
   *   k3 shown at H+10m            → pays 5 min 1 s before                  none (beyond the bound)
   *   k4 shown at H+50m and H+70m  → pays at H+70m − 3 s                    the H+70m one only (hour H+1)
   *   k5 shown at H+50m and H+70m  → pays at H+60m (10 min before H+70m)    the H+50m one only (hour H)
   * Late, after a rollup (each marks a clean hour from another one, so the rollups must re-roll it):
   *   k6 shown at H+2h              → pays at H+2h − 3 s, stored after     redeemed (hour H+2; the
   *                                    the rollup: its own hour is H+1       payment's trigger marks it)
   *   k7 shown at H+10m, pays at H+1d+9m (redeems it), rolled up; then an   the H+1d+12m one, no longer
   *      impression at H+1d+12m arrives (3 min after the payment: more      the H+10m one (hour H marked
   *      than a day after the first, which still loses the payment)         by the impression's trigger)
   */
  it("counts a payment up to 5 minutes before the showing, gives it to the latest showing at or before it + 5 min, once; rollups and raw rows agree", async () => {
    const shop = await createMerchant();
    const H = floorHour(Date.now()) - 30 * HOUR;
    const m = (min: number) => H + min * 60_000;
    const S = 1000;
    const ref = (c: string) => customerRef(env.PII_KEY, c);
    await deliverAnalytics([
      offersShown(shop.merchantId, "sk_1", ["o1"], m(10), await ref("k1")),
      offersShown(shop.merchantId, "sk_2", ["o1"], m(10), await ref("k2")),
      offersShown(shop.merchantId, "sk_3", ["o1"], m(10), await ref("k3")),
      offersShown(shop.merchantId, "sk_4a", ["o1"], m(50), await ref("k4")),
      offersShown(shop.merchantId, "sk_4b", ["o1"], m(70), await ref("k4")),
      offersShown(shop.merchantId, "sk_5a", ["o1"], m(50), await ref("k5")),
      offersShown(shop.merchantId, "sk_5b", ["o1"], m(70), await ref("k5")),
      offersShown(shop.merchantId, "sk_6", ["o1"], m(120), await ref("k6")),
      offersShown(shop.merchantId, "sk_7a", ["o1"], m(10), await ref("k7")),
    ]);
    const pay = async (customer: string, at: number) =>
      storeFeedback([await postFeedback(shop, { customer_id: customer, method_id: "visa", offer_id: "o1", event_id: `ev_${customer}_${at}`, occurred_at: iso(at) })]);
    await pay("k1", m(10) - 3 * S);
    await pay("k2", m(10) - 5 * 60 * S);
    await pay("k3", m(10) - 5 * 60 * S - S);
    await pay("k4", m(70) - 3 * S);
    await pay("k5", m(60));
    await pay("k7", m(24 * 60 + 9));

    const from = H;
    const to = floorHour(Date.now()) + HOUR;
    const range = `?from=${iso(from)}&to=${iso(to)}`.replace(/\.000Z/g, "Z");
    const meta = { merchant_id: shop.merchantId, from: "f", to: "t", holdout_percent: 0 };
    const offersOf = (facts: Awaited<ReturnType<typeof loadFacts>>) => buildSummary(meta, { ...facts, decisions: [], conversions: [], ttp: [], payments: [] }).offers;
    const byHour = (rows: Record<string, unknown>[]) => rows.map((r) => ({ bucket: r.bucket, shown: r.shown, redeemed: r.redeemed })).sort((a, b) => String(a.bucket).localeCompare(String(b.bucket)));
    const hourRows = async () =>
      (await env.DB.prepare("SELECT bucket, shown, redeemed FROM analytics_offer_rollups WHERE merchant_id = ? AND grain = 'h' ORDER BY bucket").bind(shop.merchantId).all()).results;
    /** The summary from raw rows (before the rollup: the hours are dirty), then from the rollups; hourly rollups equal the raw hours; daily rollups the same totals. */
    const expectBothPaths = async (offers: SummaryResponse["offers"], hours: { bucket: string; shown: number; redeemed: number }[]) => {
      expect((await summaryOf(shop, range)).offers).toEqual(offers);
      await rollupCron();
      expect((await summaryOf(shop, range)).offers).toEqual(offers);
      const raw = await loadFacts(env.DB, shop.merchantId, from, to, from, ["offers"], { useDaily: false });
      const rolled = await loadFacts(env.DB, shop.merchantId, from, to, Date.now(), ["offers"], { useDaily: false });
      const daily = await loadFacts(env.DB, shop.merchantId, from - (from % (24 * HOUR)), to, Date.now(), ["offers"], { useDaily: true });
      expect(offersOf(raw)).toEqual(offers);
      expect(offersOf(rolled)).toEqual(offers);
      expect(offersOf(daily)).toEqual(offers);
      expect(byHour(raw.offers)).toEqual(hours);
      expect(await hourRows()).toEqual(hours);
    };
    const hour = (h: number) => bucketKey(H + h * HOUR);
    // Shown in hour H: k1, k2, k3, k4a, k5a, k7a; in H+1: k4b, k5b; in H+2: k6.
    await expectBothPaths({ shown: 9, redeemed: 5, redemption_rate: 5 / 9 }, [
      { bucket: hour(0), shown: 6, redeemed: 4 }, // k1, k2, k5a, k7a
      { bucket: hour(1), shown: 2, redeemed: 1 }, // k4b (k4a is not redeemed too: one payment, one redemption)
      { bucket: hour(2), shown: 1, redeemed: 0 },
    ]);

    // k6 pays 3 s before its showing of H+2h; the payment's hour is H+1, the showing's H+2, which
    // only the payment's trigger can mark.
    await pay("k6", m(120) - 3 * S);
    await expectBothPaths({ shown: 9, redeemed: 6, redemption_rate: 6 / 9 }, [
      { bucket: hour(0), shown: 6, redeemed: 4 },
      { bucket: hour(1), shown: 2, redeemed: 1 },
      { bucket: hour(2), shown: 1, redeemed: 1 },
    ]);

    // k7 is shown o1 again 3 min after its payment (the analytics queue was slow): the payment now
    // redeems that showing (hour H+24), no longer the one of H+10m, a day and 2 min before it.
    await deliverAnalytics([offersShown(shop.merchantId, "sk_7b", ["o1"], m(24 * 60 + 12), await ref("k7"))]);
    await expectBothPaths({ shown: 10, redeemed: 6, redemption_rate: 6 / 10 }, [
      { bucket: hour(0), shown: 6, redeemed: 3 },
      { bucket: hour(1), shown: 2, redeemed: 1 },
      { bucket: hour(2), shown: 1, redeemed: 1 },
      { bucket: hour(24), shown: 1, redeemed: 1 },
    ]);
  });
});

describe("GET /v1/analytics/timeseries", () => {
  it("hourly points, oldest first, empty buckets included", async () => {
    const from = iso(base - 2 * HOUR);
    const to = iso(base + 3 * HOUR);
    const ts = await getJson<TimeseriesResponse>(A.secretKey, `/v1/analytics/timeseries?metric=decisions&granularity=hour&from=${from}&to=${to}`);
    expect(ts.points.map((p) => p.t)).toEqual([0, 1, 2, 3, 4].map((h) => iso(base + (h - 2) * HOUR).replace(".000Z", "Z")));
    expect(ts.points.map((p) => [p.treatment, p.holdout])).toEqual([[0, 0], [0, 0], [18, 9], [0, 0], [0, 0]]);
    const cr = await getJson<TimeseriesResponse>(A.secretKey, `/v1/analytics/timeseries?metric=conversion_rate&granularity=hour&from=${from}&to=${to}`);
    expect(cr.points[2]).toMatchObject({ treatment: 11 / 18, holdout: 4 / 9 });
    expect(cr.points[0]).toMatchObject({ treatment: null, holdout: null });
  });

  it("daily points; conversions, top-1 rate and AOV per currency", async () => {
    const dayOf = (ms: number) => Math.floor(ms / (24 * HOUR)) * 24 * HOUR;
    const from = iso(dayOf(base));
    const to = iso(dayOf(nowMs) + 24 * HOUR);
    const q = (metric: string, extra = "") => getJson<TimeseriesResponse>(A.secretKey, `/v1/analytics/timeseries?metric=${metric}&granularity=day&from=${from}&to=${to}${extra}`);
    const conv = await q("conversions");
    const days = (dayOf(nowMs) - dayOf(base)) / (24 * HOUR) + 1;
    expect(conv.points).toHaveLength(days);
    expect(conv.points[0]).toMatchObject({ t: from.replace(".000Z", "Z"), treatment: 11, holdout: 4 });
    expect(conv.points.at(-1)).toMatchObject({ treatment: 1, holdout: 0 }); // today: to0 converted, ho0 did not
    const top1 = await q("top1_rate");
    expect(top1.points[0]).toMatchObject({ treatment: 9 / 11, holdout: 1 / 4 });
    const aov = await q("aov", "&currency=USD");
    expect(aov.currency).toBe("USD");
    expect(aov.points[0]).toMatchObject({ treatment: 5500, holdout: 2333 });
    expect(aov.points.at(-1)).toMatchObject({ treatment: null, holdout: null }); // today's conversion was in EUR
    const decisions = await q("decisions");
    const totals = decisions.points.reduce((s, p) => [s[0]! + p.treatment!, s[1]! + p.holdout!], [0, 0]);
    expect(totals).toEqual([20, 10]);
  });
});

describe("validation", () => {
  const bad = async (path: string, field: string) => {
    const body = await expectError(await api(A.secretKey, path), 400, "VALIDATION_ERROR");
    expect(body.error.details!.map((d) => d.path)).toContain(field);
  };

  it("rejects bad windows, metrics, granularities and unknown parameters", async () => {
    await bad("/v1/analytics/summary?from=2026-02-03T10:00:00Z&to=2026-02-03T10:00:00Z", "from");
    await bad("/v1/analytics/summary?from=2026-02-04T10:00:00Z&to=2026-02-03T10:00:00Z", "from");
    await bad("/v1/analytics/summary?from=2025-01-01T00:00:00Z&to=2025-04-01T00:00:01Z", "to"); // 90 days + 1 s
    await bad("/v1/analytics/summary?from=2026-02-03", "from"); // not a full UTC timestamp
    await bad("/v1/analytics/summary?from=2026-02-03T10:00:00%2B01:00", "from");
    // Dates that do not exist are typos, not the day they would roll over to (2 March, 4 February).
    await bad("/v1/analytics/summary?from=2026-02-30T00:00:00Z&to=2026-03-05T00:00:00Z", "from");
    await bad("/v1/analytics/timeseries?metric=decisions&from=2026-02-01T00:00:00Z&to=2026-02-03T24:00:00Z", "to");
    await bad("/v1/analytics/summary?limit=5", "limit");
    await bad("/v1/analytics/timeseries?metric=revenue", "metric");
    await bad("/v1/analytics/timeseries", "metric");
    await bad("/v1/analytics/timeseries?metric=decisions&granularity=week", "granularity");
    await bad("/v1/analytics/timeseries?metric=aov", "currency");
    await bad("/v1/analytics/timeseries?metric=aov&currency=usd", "currency");
    await bad("/v1/analytics/timeseries?metric=decisions&granularity=hour&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:01Z", "to"); // 31 days + 1 s
  });

  it("the limit is on the window asked (from, to as sent): widened to whole buckets it may cover one bucket more, 91 daily or 745 hourly points", async () => {
    // 90 days exactly, but from the middle of a day: days 1 Jan … 1 Apr, 91 points.
    const daily = await getJson<TimeseriesResponse>(A.secretKey, "/v1/analytics/timeseries?metric=decisions&granularity=day&from=2025-01-01T12:00:00Z&to=2025-04-01T12:00:00Z");
    expect([daily.from, daily.to]).toEqual(["2025-01-01T00:00:00Z", "2025-04-02T00:00:00Z"]);
    expect(daily.points).toHaveLength(91);
    const hourly = await getJson<TimeseriesResponse>(A.secretKey, "/v1/analytics/timeseries?metric=decisions&granularity=hour&from=2026-01-01T00:30:00Z&to=2026-02-01T00:30:00Z");
    expect(hourly.points).toHaveLength(31 * 24 + 1);
    const summary = await getJson<SummaryResponse>(A.secretKey, "/v1/analytics/summary?from=2025-01-01T00:30:00Z&to=2025-04-01T00:30:00Z");
    expect([summary.from, summary.to]).toEqual(["2025-01-01T00:00:00Z", "2025-04-01T01:00:00Z"]);
    // A second more asked is refused, however it would round.
    await bad("/v1/analytics/timeseries?metric=decisions&granularity=day&from=2025-01-01T00:00:00Z&to=2025-04-01T00:00:01Z", "to");
  });

  it("accepts the limits and defaults to the last 7 days", async () => {
    const ok = await getJson<SummaryResponse>(A.secretKey, "/v1/analytics/summary?from=2025-01-01T00:00:00Z&to=2025-04-01T00:00:00Z");
    expect([ok.from, ok.to]).toEqual(["2025-01-01T00:00:00Z", "2025-04-01T00:00:00Z"]);
    expect(ok.arms.treatment).toEqual({ decisions: 0, conversions: 0, conversion_rate: null, top1_rate: null, mrr: null, median_time_to_pay_ms: null });
    expect(ok.lift.conversion_rate).toEqual({ relative: null, ci95: null, p_value: null });
    expect(ok.personalization_rate).toBeNull();
    const hourly = await getJson<TimeseriesResponse>(A.secretKey, "/v1/analytics/timeseries?metric=decisions&granularity=hour&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z");
    expect(hourly.points).toHaveLength(31 * 24);
    const def = await summaryOf(A);
    const span = Date.parse(def.to) - Date.parse(def.from);
    expect(span).toBeGreaterThanOrEqual(7 * 24 * HOUR);
    expect(span).toBeLessThanOrEqual(7 * 24 * HOUR + 2 * HOUR);
    expect(Date.parse(def.to)).toBeGreaterThan(Date.now() - 1000);
  });
});

describe("late conversions", () => {
  it("count at once (the closed hour of their decision is read raw until the next rollup) and the same after it", async () => {
    // t10 (treatment, closed hour B) pays now: its decision's hour is already rolled up.
    await storeFeedback([await postFeedback(A, { customer_id: "t10", method_id: "paypal", amount: 500, currency: "USD", event_id: "ev_t10_late", decision_id: ids.get("t10") })]);
    const before = await summaryOf(A);
    expect(before.arms.treatment).toMatchObject({ conversions: 13, conversion_rate: 13 / 20 });
    await rollupCron();
    const after = await summaryOf(A);
    expect(after).toEqual(before);
    expect(after.arms.treatment).toMatchObject({ conversions: 13, conversion_rate: 13 / 20 });
    expect(after.arms.treatment.mrr).toBeCloseTo((10 + 1 / 3) / 13, 12); // paypal was ranked 3rd
  });
});
