import { createExecutionContext, createMessageBatch, env, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { applyAnalyticsRetention } from "../../src/analytics/retention";
import { analyticsMessageStatement } from "../../src/analytics/store";
import worker from "../../src/index";
import { toUsageRow } from "../../src/jobs/feedbackConsumer";
import { acceptCutoff, applyRetention, retentionCutoffs } from "../../src/jobs/retention";
import { storeUsageEvents } from "../../src/storage/events";
import type { SummaryResponse } from "../../src/schemas/analytics";
import type { FeedbackMessage } from "../../src/schemas/feedback";
import { deliverAnalytics, getJson, makeDecision, postFeedback, rollupCron, rollupRun, storeFeedback } from "../helpers/analytics";
import { api, createMerchant, expectError, type TestMerchant } from "../helpers/fixtures";

/**
 * The edges of the analytics retention: raw rows 90 days (hour-aligned, with the margins of
 * src/analytics/horizons.ts), rollups 25 months. Numbers already rolled up never change because retention took
 * raw rows away from under them, and a window at the rollup horizon counts the hours still kept.
 */
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const floorHour = (ms: number) => Math.floor(ms / HOUR) * HOUR;
const iso = (ms: number) => new Date(ms).toISOString().replace(".000Z", "Z");

afterEach(() => vi.restoreAllMocks());

const summaryOf = (m: TestMerchant, query = "") => getJson<SummaryResponse>(m.secretKey, `/v1/analytics/summary${query}`);

/** Runs `run` with the worker's clock at `ms` (a consumer stores nothing its clock puts past the raw retention). */
async function atClock<T>(ms: number, run: () => Promise<T>): Promise<T> {
  vi.useFakeTimers({ now: ms, toFake: ["Date"] });
  try {
    return await run();
  } finally {
    vi.useRealTimers();
  }
}

describe("a decision older than the raw retention (90 days)", () => {
  async function oldDecisions(shop: TestMerchant) {
    const H = floorHour(Date.now()) - 95 * DAY;
    const decisions: Awaited<ReturnType<typeof makeDecision>>[] = [];
    for (let i = 0; i < 4; i++) decisions.push(await makeDecision(shop.merchantId, { customer: null, at: H + i * 60_000, arm: "treatment", fallback: null, ranked: ["visa", "paypal"] }));
    await atClock(H + 5 * 60_000, () => deliverAnalytics(decisions.map((d) => d.message))); // recorded back then
    await rollupCron(H + 2 * HOUR); // rolled up back then, then the raw rows aged out
    await applyAnalyticsRetention(env.DB, new Date());
    return { H, decisions, range: `?from=${iso(H - HOUR)}&to=${iso(H + 89 * DAY)}` };
  }

  it("feedback naming it is a 400 on decision_id (it can no longer convert); one just inside 90 days is accepted", async () => {
    const shop = await createMerchant({ holdout_percent: 0 });
    const { decisions } = await oldDecisions(shop);
    const res = await api(shop.secretKey, "/v1/personalize/feedback", { method: "POST", body: JSON.stringify({ customer_id: "late_c", method_id: "visa", decision_id: decisions[0]!.id }) });
    const body = await expectError(res, 400, "VALIDATION_ERROR");
    expect(body.error.details).toEqual([{ path: "decision_id", message: expect.stringMatching(/older than 90 days/) }]);
    const recent = await makeDecision(shop.merchantId, { customer: null, at: Date.now() - 90 * DAY + 60_000, arm: "treatment", fallback: null, ranked: ["visa"] });
    await postFeedback(shop, { customer_id: "late_c", method_id: "visa", decision_id: recent.id }); // 204
  });

  it("a conversion of it that still arrives (a message consumed late, a re-driven dead letter) leaves the rolled-up decisions as they are", async () => {
    const shop = await createMerchant({ holdout_percent: 0 });
    const { decisions, range } = await oldDecisions(shop);
    const before = await summaryOf(shop, range);
    expect(before.arms.treatment).toMatchObject({ decisions: 4, conversions: 0 });

    // The message as the API built it while the decision was young enough.
    const message = await postFeedback(shop, { customer_id: "late_c", method_id: "visa", event_id: "ev_old_decision" });
    const late: FeedbackMessage = { ...message, decision: { decision_id: decisions[0]!.id, arm: "treatment", fallback_reason: null, rank: 1, issued_at: decisions[0]!.message.issued_at } };
    await storeFeedback([late]);
    const after = await summaryOf(shop, range);
    expect(after.arms.treatment.decisions).toBe(4);
    await rollupCron();
    expect(await summaryOf(shop, range)).toEqual(after);
  });
});

describe("a conversion whose payment time is far older than its decision", () => {
  it("stays while its decision is kept: a rebuild of the decision's hour still counts it, and the payment's hour keeps its arm", async () => {
    const m = await createMerchant({ holdout_percent: 0 });
    const now = Date.now();
    const H = floorHour(now) - HOUR; // a closed hour
    const d1 = await makeDecision(m.merchantId, { customer: "rc1", at: H + 10 * 60_000, arm: "treatment", fallback: null, ranked: ["visa"] });
    await deliverAnalytics([d1.message]);
    // A payment sent with an occurred_at 89 days old (accepted) naming a fresh decision.
    const paid = await postFeedback(m, { customer_id: "rc1", method_id: "visa", event_id: "e_rc1", decision_id: d1.id, occurred_at: iso(now - 89 * DAY) });
    await storeFeedback([paid]);
    await rollupCron(now);
    const q = `?from=${iso(H)}&to=${iso(H + HOUR)}`;
    expect((await summaryOf(m, q)).arms.treatment.conversions).toBe(1);

    // Two days on, the payment time is past the raw horizon, the decision time is not.
    await applyAnalyticsRetention(env.DB, new Date(now + 2 * DAY));
    const left = await env.DB.prepare("SELECT (SELECT count(*) FROM analytics_decisions WHERE merchant_id = ?1) AS d, (SELECT count(*) FROM analytics_conversions WHERE merchant_id = ?1) AS c").bind(m.merchantId).first();
    expect(left).toEqual({ d: 1, c: 1 });
    // A late decision of hour H dirties it: rebuilt from raw rows, the conversion still counts.
    const d2 = await makeDecision(m.merchantId, { customer: "rc2", at: H + 20 * 60_000, arm: "treatment", fallback: null, ranked: ["visa"] });
    await deliverAnalytics([d2.message]);
    expect((await summaryOf(m, q)).arms.treatment).toMatchObject({ decisions: 2, conversions: 1 });

    // Once both times are past the horizon the row goes.
    await applyAnalyticsRetention(env.DB, new Date(now + 92 * DAY));
    expect(await env.DB.prepare("SELECT count(*) AS c FROM analytics_conversions WHERE merchant_id = ?").bind(m.merchantId).first("c")).toBe(0);
  });
});

describe("the hour that straddles the raw-retention cutoff", () => {
  it("raw events go only in hours wholly older than 90 days and two hours (the consumers store an hour more, src/analytics/horizons.ts)", () => {
    const now = new Date("2026-06-15T10:42:17.123Z");
    expect(retentionCutoffs(now).raw_events).toBe("2026-03-17T08:00:00.000Z");
  });

  it("a late payment in that hour does not rebuild its rollup from half of its raw rows", async () => {
    const shop = await createMerchant({ holdout_percent: 0 });
    const N = Date.now();
    const X = floorHour(N - 90 * DAY) + HOUR; // a whole hour, all of it inside the API's 90-day bound now
    const pay = async (id: string, at: number) =>
      storeFeedback([await postFeedback(shop, { customer_id: `c_${id}`, method_id: "visa", event_id: id, occurred_at: new Date(at).toISOString() })]);
    await pay("p1", X + 5 * 60_000);
    await pay("p2", X + 20 * 60_000);
    await pay("p3", X + 40 * 60_000);
    await rollupCron(N);
    const range = `?from=${iso(X)}&to=${iso(X + HOUR)}`;
    expect((await summaryOf(shop, range)).methods).toEqual([expect.objectContaining({ method_id: "visa", payments: 3 })]);

    // The daily jobs run with 90 days ending 30 minutes into hour X: its raw rows all stay.
    const jobAt = X + 90 * DAY + 30 * 60_000;
    await rollupCron(jobAt);
    await applyRetention(env, new Date(jobAt));
    await applyAnalyticsRetention(env.DB, new Date(jobAt));
    const kept = await env.DB.prepare("SELECT count(*) AS n FROM usage_events WHERE merchant_id = ?").bind(shop.merchantId).first<{ n: number }>();
    expect(kept!.n).toBe(3);

    // A late payment of that hour arrives (accepted: not older than 90 days) and the 5-minute job runs.
    await pay("p4", X + 50 * 60_000);
    await rollupCron(jobAt + 5 * 60_000);
    expect((await summaryOf(shop, range)).methods).toEqual([expect.objectContaining({ method_id: "visa", payments: 4 })]);
  });
});

describe("the hour just past the raw horizon (kept open an hour for late rows)", () => {
  it("is never rebuilt from what retention left: retention drops its marks, and a row dated in it after the run is not stored", async () => {
    const shop = await createMerchant({ holdout_percent: 0 });
    const X = floorHour(Date.now()) - 90 * DAY + 3 * HOUR;
    const decision = (i: number) => makeDecision(shop.merchantId, { customer: null, at: X + 10 * 60_000 + i * 1000, arm: "treatment", fallback: null, ranked: ["visa"] });
    const recorded = [await decision(0), await decision(1)];
    await atClock(X + 15 * 60_000, () => deliverAnalytics(recorded.map((d) => d.message)));
    await rollupCron(X + 2 * HOUR);
    const range = `?from=${iso(X)}&to=${iso(X + HOUR)}`;

    // 90 days on: a retried message of hour X is stored just before the hour turns, and no rollup runs before the daily job.
    await atClock(X + 90 * DAY + HOUR + 50 * 60_000, async () => expect((await deliverAnalytics([(await decision(2)).message])).explicitAcks).toHaveLength(1));
    const dailyAt = X + 90 * DAY + 3 * HOUR + 17 * 60_000; // deletes the rows of hour X
    await applyRetention(env, new Date(dailyAt));
    await applyAnalyticsRetention(env.DB, new Date(dailyAt));
    // A re-driven dead letter of hour X arrives after the run: not stored (logged as expired).
    const log = vi.spyOn(console, "log");
    const redriven = await decision(3);
    await atClock(dailyAt + 60_000, () => deliverAnalytics([redriven.message]));
    const line = log.mock.calls.map(([l]) => JSON.parse(String(l)) as Record<string, unknown>).find((l) => l.message === "analytics batch stored");
    expect(line).toMatchObject({ messages_stored: 0, expired: 1, duplicates: 0 });
    // So does the conversion of a decision of hour X, in a payment consumed late (the payment is stored).
    await atClock(dailyAt + 60_000, async () => {
      const paid = await postFeedback(shop, { customer_id: "late_x", method_id: "visa", event_id: "e_late_x" });
      const d = recorded[0]!;
      await storeFeedback([{ ...paid, decision: { decision_id: d.id, arm: "treatment", fallback_reason: null, rank: 1, issued_at: d.message.issued_at } }]);
    });
    expect(await env.DB.prepare("SELECT count(*) AS n FROM analytics_conversions WHERE merchant_id = ?").bind(shop.merchantId).first("n")).toBe(0);

    await rollupCron(dailyAt + 3 * 60_000);
    // What was rolled up stays (the late row that missed its rollup is lost with the hour, not counted twice or erased).
    expect((await atClock(dailyAt + 5 * 60_000, () => summaryOf(shop, range))).arms.treatment.decisions).toBe(2);
  });
});

describe("a conversion accepted just inside 90 days", () => {
  it("is counted by the summary at once and still after its decision's hour passes the raw horizon and the next rollup runs", async () => {
    const shop = await createMerchant({ holdout_percent: 0 });
    // Paid at 10:59:10 on day D; its decision was issued 89 d 23 h 59 m 30 s earlier, at 10:59:40 on D − 90.
    const received = Date.UTC(2031, 0, 10, 10, 59, 10);
    const issued = received - 90 * DAY + 30_000;
    const H = floorHour(issued);
    const d = await makeDecision(shop.merchantId, { customer: null, at: issued, arm: "treatment", fallback: null, ranked: ["visa", "paypal"] });
    await atClock(issued + 60_000, () => deliverAnalytics([d.message])); // recorded back then, not at our clock (90 days on it is expired)
    await rollupCron(H + 2 * HOUR); // rolled up back then: 1 decision, 0 conversions
    const range = `?from=${iso(H)}&to=${iso(H + HOUR)}`;

    // The API accepts it (the decision is not older than 90 days) and the consumer stores it.
    await atClock(received, async () => storeFeedback([await postFeedback(shop, { customer_id: "edge_c", method_id: "visa", event_id: "e_edge", decision_id: d.id })]));
    expect((await atClock(received + 10_000, () => summaryOf(shop, range))).arms.treatment).toMatchObject({ decisions: 1, conversions: 1 });

    // 11:00 on day D: hour H is now before the raw horizon; the 5-minute rollup runs.
    const next = Date.UTC(2031, 0, 10, 11, 0, 0);
    await rollupCron(next);
    // API.md §6: the summary covers every conversion accepted up to the request.
    expect((await atClock(next + 30_000, () => summaryOf(shop, range))).arms.treatment).toMatchObject({ decisions: 1, conversions: 1 });
  });
});

describe("the day that straddles the rollup-retention cutoff (25 months)", () => {
  it("a window over it counts the hours still kept, the same in the summary and the hourly series", async () => {
    const shop = await createMerchant({ holdout_percent: 0 });
    const now = new Date();
    const D = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 26, 10); // the 10th: no month-end clamping
    const decisions: Awaited<ReturnType<typeof makeDecision>>[] = [];
    for (let i = 0; i < 2; i++) decisions.push(await makeDecision(shop.merchantId, { customer: null, at: D + 1 * HOUR + i * 60_000, arm: "treatment", fallback: null, ranked: ["visa"] }));
    for (let i = 0; i < 3; i++) decisions.push(await makeDecision(shop.merchantId, { customer: null, at: D + 20 * HOUR + i * 60_000, arm: "treatment", fallback: null, ranked: ["visa"] }));
    await atClock(D + 21 * HOUR, () => deliverAnalytics(decisions.map((d) => d.message))); // recorded back then
    await rollupCron(D + 2 * DAY);
    // 25 months after D, at 10:00: hour 01:00 is past the horizon, 20:00 inside it.
    const jobAt = Date.UTC(new Date(D).getUTCFullYear(), new Date(D).getUTCMonth() + 25, 10, 10);
    await applyAnalyticsRetention(env.DB, new Date(jobAt));
    vi.useFakeTimers({ now: jobAt + 5 * 60_000, toFake: ["Date"] });
    const window = `from=${iso(D)}&to=${iso(D + DAY)}`;
    const s = await summaryOf(shop, `?${window}`);
    const hourly = await getJson<{ points: { treatment: number }[] }>(shop.secretKey, `/v1/analytics/timeseries?metric=decisions&granularity=hour&${window}`);
    const daily = await getJson<{ points: { treatment: number }[] }>(shop.secretKey, `/v1/analytics/timeseries?metric=decisions&granularity=day&${window}`);
    vi.useRealTimers();
    expect(hourly.points.reduce((n, p) => n + p.treatment, 0)).toBe(3);
    expect(daily.points.map((p) => p.treatment)).toEqual([3]);
    expect(s.arms.treatment.decisions).toBe(3);
  });
});

/** The real feedback queue handler, a first delivery (attempts 1). */
async function consumeFeedback(bodies: FeedbackMessage[]) {
  const batch = createMessageBatch("feedback-events-dev", bodies.map((body, i) => ({ id: `h_${crypto.randomUUID()}_${i}`, timestamp: new Date(), attempts: 1, body })));
  const ctx = createExecutionContext();
  await worker.queue(batch, env, ctx);
  await waitOnExecutionContext(ctx);
  return getQueueResult(batch, ctx);
}

const consumerLine = (log: { mock: { calls: unknown[][] } }) =>
  log.mock.calls.map(([l]) => JSON.parse(String(l)) as Record<string, unknown>).find((l) => l.message === "feedback batch stored");

describe("what the API just accepted, delivered across an hour boundary (src/analytics/horizons.ts)", () => {
  it("a payment accepted at 10:59:59, paid 89 d 23 h 59 m 59.5 s before, is stored when its first delivery lands at 11:00:01", async () => {
    const shop = await createMerchant();
    const received = Date.UTC(2031, 0, 10, 10, 59, 59);
    const msg = await atClock(received, () => postFeedback(shop, { customer_id: "fresh_edge", method_id: "visa", event_id: "e_fresh_edge", occurred_at: new Date(received - 90 * DAY + 500).toISOString() }));
    const log = vi.spyOn(console, "log");
    expect((await atClock(received + 2_000, () => consumeFeedback([msg]))).explicitAcks).toHaveLength(1);
    expect(consumerLine(log)).toMatchObject({ stored: 1, dropped_expired: 0 });
  });

  it("its conversion (decision 89 d 23 h 59 m 55 s old at receipt) is stored by the real consumer and counted by the summary", async () => {
    const shop = await createMerchant({ holdout_percent: 0 });
    const received = Date.UTC(2031, 0, 10, 10, 59, 50);
    const issued = received - 90 * DAY + 5_000;
    const H = floorHour(issued);
    const d = await makeDecision(shop.merchantId, { customer: null, at: issued, arm: "treatment", fallback: null, ranked: ["visa", "paypal"] });
    await atClock(issued + 60_000, () => deliverAnalytics([d.message]));
    await rollupCron(H + 2 * HOUR);
    const msg = await atClock(received, () => postFeedback(shop, { customer_id: "conv_edge", method_id: "visa", event_id: "e_conv_edge", decision_id: d.id }));
    const log = vi.spyOn(console, "log");
    await atClock(received + 12_000, () => consumeFeedback([msg]));
    expect(consumerLine(log)).toMatchObject({ stored: 1, conversions_expired: 0 });
    expect((await atClock(received + 30_000, () => summaryOf(shop, `?from=${iso(H)}&to=${iso(H + HOUR)}`))).arms.treatment).toMatchObject({ decisions: 1, conversions: 1 });
  });

  it("a payment consumed over an hour late is dropped as expired, counted in the consumer's line (never silently)", async () => {
    const shop = await createMerchant();
    const received = Date.UTC(2031, 0, 10, 10, 59, 59);
    const msg = await atClock(received, () => postFeedback(shop, { customer_id: "late_edge", method_id: "visa", event_id: "e_late_edge", occurred_at: new Date(received - 90 * DAY + 500).toISOString() }));
    const log = vi.spyOn(console, "log");
    await atClock(received + 2 * HOUR, () => consumeFeedback([msg]));
    expect(consumerLine(log)).toMatchObject({ stored: 0, dropped_expired: 1 });
  });
});

describe("a consumer batch that read its clock before an hour boundary and commits after that boundary's cron", () => {
  const B = Date.UTC(2031, 0, 10, 11, 0, 0);

  it("stores nothing into an hour retention deleted, so the hour's rolled-up numbers stay", async () => {
    const shop = await createMerchant({ holdout_percent: 0 });
    // The oldest hour a consumer at 10:59:59.9 still stores into.
    const cutoffAtStart = acceptCutoff(new Date(B - 100));
    const X = Date.parse(cutoffAtStart);
    const mk = (i: number) => makeDecision(shop.merchantId, { customer: null, at: X + 10 * 60_000 + i * 1000, arm: "treatment", fallback: null, ranked: ["visa"] });
    const recorded = [await mk(0), await mk(1)];
    await atClock(X + 15 * 60_000, () => deliverAnalytics(recorded.map((d) => d.message)));
    await rollupCron(X + 2 * HOUR);
    const range = `?from=${iso(X)}&to=${iso(X + HOUR)}`;
    await rollupRun(B); // the 11:00 cron: rollups, purge, raw retention
    await env.DB.batch([analyticsMessageStatement(env.DB, (await mk(2)).message, cutoffAtStart)]); // the slow batch commits
    await rollupRun(B + 5 * 60_000);
    // All three: the hour was neither deleted nor made final under the late row.
    expect((await atClock(B + 6 * 60_000, () => summaryOf(shop, range))).arms.treatment.decisions).toBe(3);
  });

  it("never inserts anew a payment whose stored row that cron's retention deleted (no double count)", async () => {
    const shop = await createMerchant();
    const cutoffAtStart = acceptCutoff(new Date(B - 100));
    // Paid an hour before the oldest time the slow batch still stores: retention at B may delete it.
    const paidAt = Date.parse(cutoffAtStart) - HOUR + 10 * 60_000;
    const msg = await atClock(paidAt + 90 * DAY - 60_000, () => postFeedback(shop, { customer_id: "dup_edge", method_id: "paypal", event_id: "e_dup_edge", occurred_at: new Date(paidAt).toISOString() }));
    await atClock(paidAt + 90 * DAY - 59_000, () => consumeFeedback([msg]));
    const uses = () => env.DB.prepare("SELECT uses FROM method_stats WHERE merchant_id = ? AND customer_ref = ? AND bucket = '*' AND method_id = 'paypal'").bind(shop.merchantId, msg.customer_ref).first<number>("uses");
    expect(await uses()).toBe(1);
    await rollupRun(B);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM usage_events WHERE merchant_id = ? AND event_id = 'e_dup_edge'").bind(shop.merchantId).first("n")).toBe(0);
    await storeUsageEvents(env.DB, [toUsageRow(msg)], cutoffAtStart); // the redelivery's slow batch
    expect(await uses()).toBe(1); // API.md §2: at-least-once delivery never double-counts
  });
});
