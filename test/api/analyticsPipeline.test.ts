import { createExecutionContext, createMessageBatch, env, getQueueResult, SELF, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { analyticsQueueFailures, recordDecision, recordOffersShown } from "../../src/analytics/record";
import { applyAnalyticsRetention } from "../../src/analytics/retention";
import { createApp } from "../../src/app";
import { decisionKey } from "../../src/analytics/store";
import { customerRef } from "../../src/crypto/pseudonym";
import { consumeAnalytics } from "../../src/jobs/analyticsConsumer";
import { QueryBudget } from "../../src/jobs/budget";
import { purgeDueCustomers } from "../../src/jobs/purge";
import { monthsBefore } from "../../src/jobs/retention";
import { ROLLUP_MIN_BUDGET, runAnalyticsRollups } from "../../src/jobs/rollups";
import { QUERY_SHARES } from "../../src/jobs/scheduled";
import type { DecisionMessage, SummaryResponse } from "../../src/schemas/analytics";
import { ANALYTICS_QUEUE, deliverAnalytics, getJson, makeDecision, offersShown, postFeedback, rollupCron, storeFeedback } from "../helpers/analytics";
import { api, BASE, createMerchant, type TestMerchant } from "../helpers/fixtures";
import { countD1Queries } from "../helpers/queryCount";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const floorHour = (ms: number) => Math.floor(ms / HOUR) * HOUR;

let shop: TestMerchant;
beforeAll(async () => {
  shop = await createMerchant({ holdout_percent: 10 });
});
afterEach(() => vi.restoreAllMocks());

const countRows = async (table: string, where = "1", ...binds: unknown[]) =>
  (await env.DB.prepare(`SELECT count(*) AS n FROM ${table} WHERE merchant_id = ? AND ${where}`).bind(shop.merchantId, ...binds).first<{ n: number }>())!.n;

describe("recording off the hot path", () => {
  it("recordDecision sends the decision record to the analytics queue inside waitUntil; the consumer stores it", async () => {
    const send = vi.spyOn(env.ANALYTICS_QUEUE, "send").mockResolvedValue(undefined as never);
    const ctx = createExecutionContext();
    const waitUntil = vi.spyOn(ctx, "waitUntil");
    const { id } = await makeDecision(shop.merchantId, { customer: "c1", at: Date.now(), arm: "treatment", fallback: null, ranked: ["visa"] });
    const ref = await customerRef(env.PII_KEY, "c1");
    recordDecision(env, ctx, "req_test", {
      decision_id: id,
      merchant_id: shop.merchantId,
      customer_ref: ref,
      issued_at: new Date().toISOString(),
      arm: "treatment",
      personalized: true,
      fallback_reason: null,
      ranked: ["visa", "paypal"],
      context: { device_type: "mobile", country: "NL", currency: "EUR" },
      cache: "hit",
      holdout_percent: 12.5,
    });
    // Handed to waitUntil, not awaited by the caller (the response does not wait for the queue).
    expect(waitUntil).toHaveBeenCalledTimes(1);
    await waitOnExecutionContext(ctx);
    expect(send).toHaveBeenCalledTimes(1);
    const body = send.mock.calls[0]![0];
    await deliverAnalytics([body]);
    const row = await env.DB.prepare("SELECT * FROM analytics_decisions WHERE merchant_id = ? AND decision_key = ?").bind(shop.merchantId, decisionKey(id)).first();
    expect(row).toMatchObject({ customer_ref: ref, arm: "treatment", personalized: 1, fallback_reason: null, ranked: '["visa","paypal"]', device_type: "mobile", country: "NL", currency: "EUR", cache: "hit", holdout_percent: 12.5 });
  });

  it("a /methods answer records the holdout_percent its arm was assigned with", async () => {
    const send = vi.spyOn(env.ANALYTICS_QUEUE, "send").mockResolvedValue(undefined as never);
    const res = await api(shop.secretKey, "/v1/personalize/methods?customer_id=c_pct&device_type=mobile&country=US");
    expect(res.status).toBe(200);
    const { decision_id } = await res.json<{ decision_id: string }>();
    await vi.waitFor(() => expect(send).toHaveBeenCalledTimes(1));
    const body = send.mock.calls[0]![0] as DecisionMessage;
    expect(body).toMatchObject({ kind: "decision", decision_id, holdout_percent: 10 });
    await deliverAnalytics([body]);
    const row = await env.DB.prepare("SELECT holdout_percent FROM analytics_decisions WHERE merchant_id = ? AND decision_key = ?").bind(shop.merchantId, decisionKey(decision_id)).first();
    expect(row).toEqual({ holdout_percent: 10 });
  });

  it("a HEAD of /methods or /offers records no decision and no impression: nobody saw that answer", async () => {
    const offerShop = await createMerchant({ features: { targeted_offers: true, cross_merchant: false }, offers: [{ offer_id: "visa_head", method_id: "visa", title: "5 off", discount_type: "fixed", discount_value: 500 }] });
    const send = vi.spyOn(env.ANALYTICS_QUEUE, "send").mockResolvedValue(undefined as never);
    for (const [path, key] of [["/v1/personalize/methods?customer_id=c_head", offerShop.secretKey], ["/v1/personalize/offers?customer_id=c_head", offerShop.secretKey], ["/v1/personalize/methods", offerShop.publishableKey], ["/v1/personalize/offers", offerShop.publishableKey]] as const) {
      const res = await SELF.fetch(`${BASE}${path}`, { method: "HEAD", headers: { "X-API-Key": key } });
      expect(`${path} ${res.status}`).toBe(`${path} 200`);
    }
    expect(send).not.toHaveBeenCalled();
    // The same GETs do record (one decision each, one impression each: the offer applies).
    for (const [path, key] of [["/v1/personalize/methods?customer_id=c_head", offerShop.secretKey], ["/v1/personalize/offers", offerShop.publishableKey]] as const) {
      expect((await SELF.fetch(`${BASE}${path}`, { headers: { "X-API-Key": key } })).status).toBe(200);
    }
    expect(send.mock.calls.map((call) => (call[0] as { kind: string }).kind).sort()).toEqual(["decision", "offers_shown"]);
  });

  it("recordOffersShown records one impression per offer, none for an empty answer", async () => {
    const send = vi.spyOn(env.ANALYTICS_QUEUE, "send").mockResolvedValue(undefined as never);
    const ctx = createExecutionContext();
    recordOffersShown(env, ctx, "req_test", { merchant_id: shop.merchantId, customer_ref: null, shown_at: new Date().toISOString(), offer_ids: [] });
    recordOffersShown(env, ctx, "req_test", { merchant_id: shop.merchantId, customer_ref: null, shown_at: new Date().toISOString(), offer_ids: ["o_a", "o_b"] });
    await waitOnExecutionContext(ctx);
    expect(send).toHaveBeenCalledTimes(1);
    const before = await countRows("analytics_offer_impressions");
    await deliverAnalytics([send.mock.calls[0]![0], send.mock.calls[0]![0]]);
    expect(await countRows("analytics_offer_impressions")).toBe(before + 2);
  });

  it("a failing analytics queue never throws into the request: logged with its metric and counted", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    vi.spyOn(env.ANALYTICS_QUEUE, "send").mockRejectedValue(new Error("queue down"));
    const failures = analyticsQueueFailures();
    const ctx = createExecutionContext();
    const { id } = await makeDecision(shop.merchantId, { customer: null, at: Date.now(), arm: null, fallback: "guest", ranked: ["visa"] });
    const record = { decision_id: id, merchant_id: shop.merchantId, customer_ref: null, issued_at: new Date().toISOString(), arm: null, personalized: false, fallback_reason: "guest", ranked: ["visa"], context: { device_type: null, country: null }, cache: null, holdout_percent: 0 };
    expect(() => recordDecision(env, ctx, "req_dropped", record)).not.toThrow();
    await waitOnExecutionContext(ctx);
    expect(analyticsQueueFailures()).toBe(failures + 1);
    const line = JSON.parse(errors.mock.calls.at(-1)![0] as string);
    expect(line).toMatchObject({ level: "error", metric: "analytics_queue_failed", request_id: "req_dropped", kind: "decision", decision_id: id, merchant_id: shop.merchantId });

    // A binding that throws synchronously is caught too.
    vi.spyOn(env.ANALYTICS_QUEUE, "send").mockImplementation(() => {
      throw new Error("binding gone");
    });
    expect(() => recordOffersShown(env, ctx, "req_test", { merchant_id: shop.merchantId, customer_ref: null, shown_at: new Date().toISOString(), offer_ids: ["o_a"] })).not.toThrow();
    expect(analyticsQueueFailures()).toBe(failures + 2);
  });

  it("the line of a record the queue refused names the /methods answer: its request_id and decision_id", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    vi.spyOn(env.ANALYTICS_QUEUE, "send").mockRejectedValue(new Error("Queue send failed (injected)"));
    const ctx = createExecutionContext();
    const res = await createApp().fetch(new Request(`${BASE}/v1/personalize/methods?customer_id=cus_aq_dropped&country=NL`, { headers: { "X-API-Key": shop.secretKey } }), env, ctx);
    const { decision_id } = await res.json<{ decision_id: string }>();
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(200);
    const line = errors.mock.calls.map(([l]) => JSON.parse(String(l)) as Record<string, unknown>).find((l) => l.metric === "analytics_queue_failed");
    expect(line).toMatchObject({ request_id: res.headers.get("X-Request-Id"), decision_id, kind: "decision" });
  });
});

describe("analytics consumer", () => {
  it("a full batch of impressions with many offers each is one D1 query per message (D1 allows 1,000 per invocation), stored once", async () => {
    const at = Date.now() - 2 * HOUR;
    const offers = Array.from({ length: 20 }, (_, i) => `o_many_${i}`);
    const bodies = Array.from({ length: 100 }, (_, i) => offersShown(shop.merchantId, `imp_many_${i}`, offers, at));
    const first = await countD1Queries(() => deliverAnalytics(bodies));
    expect(first.result.explicitAcks).toHaveLength(100);
    expect(first.queries).toBeLessThanOrEqual(100);
    const stored = () => countRows("analytics_offer_impressions", "impression_id LIKE 'imp_many_%'");
    expect(await stored()).toBe(2000);
    const again = await deliverAnalytics(bodies); // redelivery adds nothing
    expect(again.explicitAcks).toHaveLength(100);
    expect(await stored()).toBe(2000);
  });

  it("acks poison messages and stores the valid ones in the same delivery", async () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    const { message } = await makeDecision(shop.merchantId, { customer: "c2", at: Date.now(), arm: "holdout", fallback: "holdout", ranked: ["visa"] });
    const result = await deliverAnalytics([{ nonsense: true }, "text", { ...message, arm: "control" }, message]);
    expect(result.explicitAcks).toHaveLength(4);
    expect(result.retryMessages).toHaveLength(0);
    expect(await countRows("analytics_decisions", "decision_key = ?", decisionKey(message.decision_id))).toBe(1);
    // An error line each (the message is acked and lost), with its id and failing paths, never its body.
    const poison = error.mock.calls.map(([l]) => JSON.parse(String(l)) as Record<string, unknown>).filter((l) => l.message === "poison analytics message dropped");
    expect(poison).toHaveLength(3); // the arm "control" is poison too
    for (const l of poison) expect(result.explicitAcks).toContain(l.message_id);
    expect(poison.every((l) => l.level === "error" && Array.isArray(l.issues))).toBe(true);
  });

  it("a delivery that is all poison still logs `analytics batch stored`, with zeros and its poison count", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const log = vi.spyOn(console, "log");
    const result = await deliverAnalytics([{ nonsense: true }, "text"]);
    expect(result.explicitAcks).toHaveLength(2);
    const summary = log.mock.calls.map(([l]) => JSON.parse(String(l)) as Record<string, unknown>).find((l) => l.message === "analytics batch stored");
    expect(summary).toMatchObject({ messages: 2, decisions: 0, offers_shown: 0, messages_stored: 0, duplicates: 0, expired: 0, poison: 2 });
  });

  it("retries every valid message with backoff when D1 fails; only poison is acked", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const { message } = await makeDecision(shop.merchantId, { customer: "c3", at: Date.now(), arm: "treatment", fallback: null, ranked: ["visa"] });
    const batch = createMessageBatch<unknown>(ANALYTICS_QUEUE, [
      { id: "r1", timestamp: new Date(), attempts: 2, body: message },
      { id: "r2", timestamp: new Date(), attempts: 2, body: { junk: 1 } },
    ]);
    const retry = vi.spyOn(batch.messages[0]!, "retry"); // getQueueResult does not report delays
    const ctx = createExecutionContext();
    await consumeAnalytics(batch, { ...env, DB: env.UNMIGRATED_DB }, ctx);
    const result = await getQueueResult(batch, ctx);
    expect(result.retryMessages.map((r) => r.msgId)).toEqual(["r1"]);
    expect(retry).toHaveBeenCalledWith({ delaySeconds: 30 });
    expect(result.explicitAcks).toEqual(["r2"]);
  });
});

describe("SRM", () => {
  it("flags a 50/50 split reported for a 10 % holdout", async () => {
    const m = await createMerchant({ holdout_percent: 10 });
    const at = floorHour(Date.now()) - 5 * HOUR;
    for (const arm of ["treatment", "holdout"] as const) {
      const msgs = [];
      for (let i = 0; i < 100; i++) msgs.push((await makeDecision(m.merchantId, { customer: `${arm}${i}`, at: at + i * 1000, arm, fallback: arm === "holdout" ? "holdout" : null, ranked: ["visa"] })).message);
      await deliverAnalytics(msgs);
    }
    await rollupCron();
    const s = await getJson<SummaryResponse>(m.secretKey, "/v1/analytics/summary");
    // expected 20 holdout / 180 treatment of 200: χ² = 80²/20 + 80²/180 = 355.6 → p ≈ 2.6e-79
    expect(s.srm).toMatchObject({ expected_holdout_share: 0.1, observed_holdout_share: 0.5, warning: true });
    expect(s.srm.p_value!).toBeLessThan(1e-70);
    expect(s.lift.conversion_rate).toEqual({ relative: null, ci95: null, p_value: null }); // no conversions in either arm
  });
});

describe("rollup job", () => {
  it("stops at its query budget and finishes on the next run; its share always fits a full day", async () => {
    expect(QUERY_SHARES.frequent.rollups).toBeGreaterThanOrEqual(ROLLUP_MIN_BUDGET);
    const m = await createMerchant();
    // One clock for every run: were the hour to turn between runs, the hour of the decisions earlier
    // tests made now would close and be one more dirty hour for the second run (hours 3).
    const now = Date.now();
    await rollupCron(now); // start clean
    const day = Math.floor(now / DAY) * DAY - 3 * DAY;
    const msgs = [];
    for (let d = 0; d < 3; d++) msgs.push((await makeDecision(m.merchantId, { customer: `c${d}`, at: day + d * DAY + HOUR, arm: "treatment", fallback: null, ranked: ["visa"] })).message);
    await deliverAnalytics(msgs);
    // The stale-mark delete, one read of dirty hours, one day of one hour (21): the second day does not fit.
    const budget = new QueryBudget(2 + 21 + 20);
    const first = await runAnalyticsRollups(env, new Date(now), { budget });
    expect(budget.left).toBe(20);
    expect(first).toMatchObject({ hours: 1, days: 1, unfinished: true });
    const second = await runAnalyticsRollups(env, new Date(now));
    expect(second).toMatchObject({ hours: 2, days: 2, unfinished: false });
    const s = await getJson<SummaryResponse>(m.secretKey, "/v1/analytics/summary");
    expect(s.arms.treatment.decisions).toBe(3);
  });

  it("rebuilds an hour for every dirty merchant at once: statements do not grow with merchants, bystanders stay as they are", async () => {
    const now = Date.now(); // one clock for both runs (see above)
    await rollupCron(now); // start clean
    const at = floorHour(now) - 5 * DAY + 2 * HOUR;
    const hourKey = new Date(at).toISOString().slice(0, 13) + ":00:00Z";
    const shops = await Promise.all([1, 2, 3, 4, 5].map(() => createMerchant()));
    const msgs = [];
    for (const [i, m] of shops.entries()) {
      for (let k = 0; k <= i; k++) msgs.push((await makeDecision(m.merchantId, { customer: `c${k}`, at: at + k * 1000, arm: "treatment", fallback: null, ranked: ["visa"] })).message);
    }
    await deliverAnalytics(msgs);
    // A merchant with a rollup row in the same hour but no dirty mark (no raw rows behind it): a rebuild
    // scoped wrongly would erase it.
    const bystander = await createMerchant();
    await env.DB.prepare("INSERT INTO analytics_offer_rollups (merchant_id, grain, bucket, offer_id, shown, redeemed) VALUES (?, 'h', ?, 'o_b', 7, 0)").bind(bystander.merchantId, hourKey).run();

    // One day's batch for one hour is 1 + 2 × 5 facts × (1 hour + 1 day) = 21 statements, whatever the
    // merchant count; with the stale-mark delete and the one read of dirty hours, 23 queries.
    const report = await runAnalyticsRollups(env, new Date(now), { budget: new QueryBudget(23) });
    expect(report).toMatchObject({ hours: 1, merchant_hours: 5, days: 1, unfinished: false });
    for (const [i, m] of shops.entries()) {
      const rows = await env.DB.prepare("SELECT grain, sum(decisions) AS n FROM analytics_decision_rollups WHERE merchant_id = ? GROUP BY grain ORDER BY grain").bind(m.merchantId).all();
      expect(rows.results).toEqual([{ grain: "d", n: i + 1 }, { grain: "h", n: i + 1 }]);
    }
    expect(await env.DB.prepare("SELECT shown FROM analytics_offer_rollups WHERE merchant_id = ?").bind(bystander.merchantId).first("shown")).toBe(7);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM analytics_dirty_hours WHERE hour = ?").bind(hourKey).first("n")).toBe(0);
  });
});

describe("customer purge and retention", () => {
  it("the purge statements remove one customer's raw analytics rows and nothing else; rollups stay", async () => {
    const at = floorHour(Date.now()) - 3 * HOUR;
    const gone = await makeDecision(shop.merchantId, { customer: "gone", at, arm: "treatment", fallback: null, ranked: ["visa"] });
    const kept = await makeDecision(shop.merchantId, { customer: "kept", at, arm: "treatment", fallback: null, ranked: ["visa"] });
    await deliverAnalytics([gone.message, kept.message, offersShown(shop.merchantId, "imp_gone", ["o_a"], at, await customerRef(env.PII_KEY, "gone"))]);
    for (const [customer, d] of [["gone", gone], ["kept", kept]] as const) {
      await storeFeedback([await postFeedback(shop, { customer_id: customer, method_id: "visa", event_id: `ev_${customer}`, decision_id: d.id, occurred_at: new Date(at + 1000).toISOString() })]);
    }
    await rollupCron();
    const rollupsBefore = await countRows("analytics_decision_rollups");
    const ref = await customerRef(env.PII_KEY, "gone");
    const byRef = async () => {
      let n = 0;
      for (const t of ["analytics_decisions", "analytics_conversions", "analytics_offer_impressions"]) n += await countRows(t, "customer_ref = ?", ref);
      return n;
    };
    expect(await byRef()).toBe(3);
    // The data-rights purge (src/jobs/purge.ts) of a deletion whose grace period has passed.
    await env.DB.prepare("INSERT INTO customer_deletions (merchant_id, customer_ref, status, requested_at, purge_after) VALUES (?, ?, 'pending', ?, ?)")
      .bind(shop.merchantId, ref, new Date(at - 31 * DAY).toISOString(), new Date(at - DAY).toISOString()).run();
    expect(await purgeDueCustomers(env, new Date(at))).toMatchObject({ customers_purged: 1, unfinished: 0 });
    expect(await byRef()).toBe(0);
    expect(await countRows("analytics_decisions", "customer_ref = ?", await customerRef(env.PII_KEY, "kept"))).toBe(1);
    expect(await countRows("analytics_conversions", "customer_ref = ?", await customerRef(env.PII_KEY, "kept"))).toBe(1);
    expect(await countRows("analytics_decision_rollups")).toBe(rollupsBefore);
  });

  it("a decision or impression made before the customer's purge but consumed after it is counted without its pseudonym", async () => {
    const ref = await customerRef(env.PII_KEY, "in_flight");
    const at = Date.now() - 60_000;
    await env.DB.prepare("INSERT INTO customer_deletions (merchant_id, customer_ref, status, requested_at, purge_after) VALUES (?, ?, 'pending', ?, ?)")
      .bind(shop.merchantId, ref, new Date(at - 31 * DAY).toISOString(), new Date(at - DAY).toISOString()).run();
    // Answered before the purge, still on the analytics queue when it runs (a delivery delay, a retry).
    const before = await makeDecision(shop.merchantId, { customer: "in_flight", at, arm: null, fallback: "customer_deleted", ranked: ["visa"] });
    expect((await purgeDueCustomers(env, new Date())).customers_purged).toBeGreaterThanOrEqual(1);
    // The customer came back after the purge: that answer is theirs to keep, until their next erasure.
    const after = await makeDecision(shop.merchantId, { customer: "in_flight", at: Date.now() + 1000, arm: "treatment", fallback: null, ranked: ["visa"] });
    await deliverAnalytics([before.message, after.message, offersShown(shop.merchantId, "imp_in_flight", ["o_a", "o_b"], at, ref)]);
    expect(await countRows("analytics_decisions", "customer_ref = ?", ref)).toBe(1); // only the one made after the purge
    expect(await countRows("analytics_decisions", "decision_key = ? AND customer_ref IS NULL", decisionKey(before.id))).toBe(1);
    expect(await countRows("analytics_offer_impressions", "impression_id = 'imp_in_flight' AND customer_ref IS NULL")).toBe(2);
  });

  it("a decision made before the purge, consumed while a new deletion has reopened the tombstone, is stored without its pseudonym (a restore would keep it)", async () => {
    const ref = await customerRef(env.PII_KEY, "in_flight_reopened");
    const at = Date.now() - 60_000;
    await env.DB.prepare("INSERT INTO customer_deletions (merchant_id, customer_ref, status, requested_at, purge_after) VALUES (?, ?, 'pending', ?, ?)")
      .bind(shop.merchantId, ref, new Date(at - 31 * DAY).toISOString(), new Date(at - DAY).toISOString()).run();
    const before = await makeDecision(shop.merchantId, { customer: "in_flight_reopened", at, arm: null, fallback: "customer_deleted", ranked: ["visa"] });
    expect((await purgeDueCustomers(env, new Date())).customers_purged).toBeGreaterThanOrEqual(1);
    // The merchant asks again (the tombstone reopens), and the in-flight decision arrives now.
    expect((await api(shop.secretKey, "/v1/personalize/customers/in_flight_reopened", { method: "DELETE" })).status).toBe(202);
    await deliverAnalytics([before.message]);
    expect((await api(shop.secretKey, "/v1/personalize/customers/in_flight_reopened/restore", { method: "POST" })).status).toBe(200);
    expect(await countRows("analytics_decisions", "decision_key = ? AND customer_ref IS NULL", decisionKey(before.id))).toBe(1);
    expect(await countRows("analytics_decisions", "customer_ref = ?", ref)).toBe(0);
  });

  it("raw rows go after 90 days (from the start of that hour, less two: src/analytics/horizons.ts), rollups after 25 months, each strictly older than its window", async () => {
    const now = new Date();
    const raw = floorHour(now.getTime() - 90 * DAY) - 2 * HOUR;
    const db = env.DB;
    const insertDecision = (key: string, at: number) =>
      db.prepare("INSERT INTO analytics_decisions (merchant_id, decision_key, customer_ref, decided_at, arm, personalized, ranked) VALUES (?, ?, 'r', ?, 'treatment', 1, '[]')")
        .bind(shop.merchantId, key, new Date(at).toISOString());
    await db.batch([insertDecision("old", raw - 1000), insertDecision("edge", raw + 1000)]);
    const rollupCut = monthsBefore(now, 25).getTime();
    const insertRollup = (at: number) =>
      db.prepare("INSERT INTO analytics_offer_rollups (merchant_id, grain, bucket, offer_id, shown, redeemed) VALUES (?, 'h', ?, 'o_r', 1, 0)")
        .bind(shop.merchantId, new Date(floorHour(at)).toISOString().slice(0, 13) + ":00:00Z");
    await db.batch([insertRollup(rollupCut - 2 * HOUR), insertRollup(rollupCut + 2 * HOUR)]);

    const deleted = await applyAnalyticsRetention(db, now);
    expect(deleted.analytics_decisions).toBeGreaterThanOrEqual(1);
    expect(await countRows("analytics_decisions", "decision_key IN ('old', 'edge')")).toBe(1);
    expect(await countRows("analytics_decisions", "decision_key = 'edge'")).toBe(1);
    expect(await countRows("analytics_offer_rollups", "offer_id = 'o_r'")).toBe(1);
    expect(await countRows("analytics_offer_rollups", "offer_id = 'o_r' AND bucket > ?", new Date(rollupCut).toISOString())).toBe(1);
  });

  it("the rollup job drops dirty marks older than raw retention instead of rebuilding them from nothing", async () => {
    const now = new Date();
    const stale = new Date(floorHour(now.getTime() - 91 * DAY)).toISOString().slice(0, 13) + ":00:00Z";
    await env.DB.prepare("INSERT INTO analytics_offer_rollups (merchant_id, grain, bucket, offer_id, shown, redeemed) VALUES (?, 'h', ?, 'o_s', 7, 0)").bind(shop.merchantId, stale).run();
    await env.DB.prepare("INSERT INTO analytics_dirty_hours (merchant_id, hour) VALUES (?, ?)").bind(shop.merchantId, stale).run();
    const report = await runAnalyticsRollups(env, now);
    expect(report.stale_dropped).toBeGreaterThanOrEqual(1);
    // Its hour's rollup is kept as it was (a daily rollup of that day may also sum it: between about
    // 00:00 and 02:00 UTC part of the day 91 days back is still inside raw retention, so the day is rebuilt).
    expect(await countRows("analytics_offer_rollups", "offer_id = 'o_s' AND grain = 'h' AND shown = 7")).toBe(1);
    expect(await countRows("analytics_offer_rollups", "offer_id = 'o_s' AND shown <> 7")).toBe(0);
    expect(await countRows("analytics_dirty_hours", "hour = ?", stale)).toBe(0);
  });
});
