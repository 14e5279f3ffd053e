import { createExecutionContext, createMessageBatch, createScheduledController, env, getQueueResult, type MessageBatchMessage, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { customerRef } from "../../src/crypto/pseudonym";
import worker from "../../src/index";
import { MAX_BODY_CHARS } from "../../src/jobs/deadLetterConsumer";
import { DEAD_LETTER_MAX_RETRIES, deadLetterRetryDelaySeconds } from "../../src/jobs/delivery";
import { queueRouteOf } from "../../src/jobs/queueRoutes";
import { applyRetention } from "../../src/jobs/retention";
import { DATA_LIFECYCLE_CRON } from "../../src/jobs/scheduled";
import type { FeedbackMessage } from "../../src/schemas/feedback";
import { DAY_MS, iso } from "../helpers/customerData";
import { admin, api, createMerchant, expectError, type TestMerchant } from "../helpers/fixtures";

const FEEDBACK_DLQ = "feedback-events-dlq-dev";
const ANALYTICS_DLQ = "analytics-events-dlq-dev";
let shop: TestMerchant;

beforeAll(async () => {
  shop = await createMerchant();
});
beforeEach(async () => {
  await env.DB.prepare("DELETE FROM dead_letters").run();
});
afterEach(() => vi.restoreAllMocks());

let seq = 0;
async function feedback(customerId: string, fields: Partial<FeedbackMessage> = {}): Promise<FeedbackMessage> {
  seq += 1;
  const now = new Date(Date.now() - 60_000).toISOString();
  return {
    v: 1, merchant_id: shop.merchantId, customer_ref: await customerRef(env.PII_KEY, customerId), event_id: `dl_ev_${seq}`, method_id: "klarna",
    amount: 2500, currency: "EUR", device_type: "mobile", location_country: "NL", offer_id: null, occurred_at: now, received_at: now, decision: null,
    ...fields,
  };
}

/** Delivers bodies to the worker's real queue handler; ids are stable per (tag, index) so a test can redeliver. */
async function deliver(queue: string, bodies: unknown[], opts: { tag?: string; attempts?: number; testEnv?: typeof env } = {}) {
  const tag = opts.tag ?? `t${++seq}`;
  const attempts = opts.attempts ?? 1;
  const messages: MessageBatchMessage[] = bodies.map((body, i) => ({ id: `dlq_${tag}_${i}`, timestamp: new Date(), attempts, body }));
  const batch = createMessageBatch(queue, messages);
  const retrySpies = batch.messages.map((m) => vi.spyOn(m, "retry"));
  const ctx = createExecutionContext();
  await worker.queue(batch, opts.testEnv ?? env, ctx);
  const delays = retrySpies.flatMap((s) => s.mock.calls.map(([o]) => o?.delaySeconds));
  return { ids: messages.map((m) => m.id), batch, result: await getQueueResult(batch, ctx), delays };
}

interface Row { id: number; queue: string; message_id: string; merchant_id: string | null; customer_ref: string | null; body: string; truncated: number; attempts: number; received_at: string }
async function rows(where = "1 = 1", ...binds: unknown[]): Promise<Row[]> {
  return (await env.DB.prepare(`SELECT * FROM dead_letters WHERE ${where} ORDER BY id`).bind(...binds).all<Row>()).results;
}
async function countEvents(eventId: string): Promise<number> {
  return (await env.DB.prepare("SELECT count(*) AS n FROM usage_events WHERE merchant_id = ? AND event_id = ?").bind(shop.merchantId, eventId).first<{ n: number }>())!.n;
}
async function uses(ref: string, method: string): Promise<number | undefined> {
  const row = await env.DB.prepare("SELECT uses FROM method_stats WHERE merchant_id = ? AND customer_ref = ? AND bucket = '*' AND method_id = ?")
    .bind(shop.merchantId, ref, method).first<{ uses: number }>();
  return row?.uses;
}
const logLines = (spy: { mock: { calls: unknown[][] } }) => spy.mock.calls.map(([l]) => JSON.parse(String(l)) as Record<string, unknown>);
const post = (body: unknown) => admin("/v1/admin/dead-letters/redrive", { method: "POST", body: JSON.stringify(body) });

interface ListJson { dead_letters: Record<string, unknown>[]; counts: { feedback: number; analytics: number }; next_cursor: string | null }

describe("dead-letter queue consumer", () => {
  it("stores every message once, valid or poison, and acks them; a redelivered dead letter is not stored twice", async () => {
    const warn = vi.spyOn(console, "warn");
    const good = await feedback("cus_dl_once");
    const first = await deliver(FEEDBACK_DLQ, [good, "not json at all", { v: 9 }], { tag: "once" });
    expect(new Set(first.result.explicitAcks)).toEqual(new Set(first.ids));
    expect(first.result.retryMessages).toEqual([]);
    const again = await deliver(FEEDBACK_DLQ, [good, "not json at all", { v: 9 }], { tag: "once", attempts: 2 });
    expect(new Set(again.result.explicitAcks)).toEqual(new Set(again.ids));

    const stored = await rows();
    expect(stored.map((r) => r.message_id)).toEqual(first.ids);
    expect(stored[0]).toMatchObject({ queue: "feedback", merchant_id: shop.merchantId, customer_ref: good.customer_ref, body: JSON.stringify(good), truncated: 0, attempts: 1 });
    expect(stored[1]).toMatchObject({ merchant_id: null, customer_ref: null, body: '"not json at all"', truncated: 0 });
    expect(stored[2]).toMatchObject({ merchant_id: null, customer_ref: null, body: '{"v":9}' });
    expect(Date.parse(stored[0]!.received_at)).toBeGreaterThan(Date.now() - 60_000);

    const lines = logLines(warn).filter((l) => l.message === "dead letters stored");
    expect(lines.map((l) => [l.stored, l.duplicates, l.original_queue])).toEqual([[3, 0, "feedback"], [0, 3, "feedback"]]);
    expect(JSON.stringify(lines)).not.toContain(good.customer_ref); // counts, never bodies
    expect(await countEvents(good.event_id)).toBe(0); // stored as a letter, not applied
  });

  it("analytics dead letters are stored under queue 'analytics' with the merchant and pseudonym of their body", async () => {
    const ref = await customerRef(env.PII_KEY, "cus_dl_analytics");
    const body = { v: 1, kind: "offers_shown", impression_id: "imp_1", merchant_id: shop.merchantId, customer_ref: ref, shown_at: new Date().toISOString(), offer_ids: ["a"] };
    const { result, ids } = await deliver(ANALYTICS_DLQ, [body]);
    expect(result.explicitAcks).toEqual(ids);
    expect(await rows()).toMatchObject([{ queue: "analytics", merchant_id: shop.merchantId, customer_ref: ref, body: JSON.stringify(body) }]);
  });

  it("keeps an oversized body cut at the cap, and a body JSON cannot hold, flagged as truncated", async () => {
    const big = { merchant_id: shop.merchantId, blob: "x".repeat(MAX_BODY_CHARS + 10) };
    await deliver(FEEDBACK_DLQ, [big, { n: 10n }]);
    const [cut, odd] = await rows();
    expect(cut).toMatchObject({ truncated: 1, merchant_id: shop.merchantId });
    expect(cut!.body.length).toBe(MAX_BODY_CHARS);
    expect(cut!.body).toBe(JSON.stringify(big).slice(0, MAX_BODY_CHARS));
    expect(odd).toMatchObject({ truncated: 1 });
    expect(odd!.body).toMatch(/not JSON-serializable/);
  });

  it("acks only after the D1 batch has committed", async () => {
    const events: string[] = [];
    const realBatch = env.DB.batch.bind(env.DB);
    vi.spyOn(env.DB, "batch").mockImplementation(async (stmts) => {
      events.push("batch start");
      const out = await realBatch(stmts);
      events.push("batch committed");
      return out;
    });
    const messages: MessageBatchMessage[] = [0, 1].map((i) => ({ id: `dlq_order_${i}`, timestamp: new Date(), attempts: 1, body: { i } }));
    const batch = createMessageBatch(FEEDBACK_DLQ, messages);
    for (const m of batch.messages) vi.spyOn(m, "ack").mockImplementation(() => void events.push("ack"));
    await worker.queue(batch, env, createExecutionContext());
    expect(events).toEqual(["batch start", "batch committed", "ack", "ack"]);
    expect((await rows()).length).toBe(2);
  });

  it("retries the whole delivery with the consumers' backoff when D1 fails, and acks nothing", async () => {
    const error = vi.spyOn(console, "error");
    const body = await feedback("cus_dl_retry");
    const failed = await deliver(FEEDBACK_DLQ, [body, "poison"], { attempts: 3, testEnv: { ...env, DB: env.UNMIGRATED_DB } });
    expect(failed.result.explicitAcks).toEqual([]);
    expect(failed.result.retryMessages.map((r) => r.msgId)).toEqual(failed.ids);
    expect(failed.delays).toEqual([deadLetterRetryDelaySeconds(3), deadLetterRetryDelaySeconds(3)]);
    expect(deadLetterRetryDelaySeconds(3)).toBe(240);
    expect(logLines(error).some((l) => l.message === "dead letter write failed; retrying" && l.messages === 2)).toBe(true);
    expect(await rows()).toEqual([]);
  });

  it("a letter on its last attempt whose write fails is logged as lost (the platform discards it), not as retrying", async () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    const failed = await deliver(FEEDBACK_DLQ, [await feedback("cus_dl_last")], { attempts: DEAD_LETTER_MAX_RETRIES + 1, testEnv: { ...env, DB: env.UNMIGRATED_DB } });
    expect(failed.result.explicitAcks).toEqual([]);
    const lines = logLines(error);
    expect(lines.filter((l) => l.message === "dead letter write failed; retrying")).toEqual([]);
    expect(lines.find((l) => l.message === "dead letters lost")).toMatchObject({ level: "error", metric: "dead_letters_lost", messages: 1, message_ids: failed.ids });
  });
});

/** Puts letters in place through the consumer; returns their ids in order. */
async function seedLetters(queue: string, bodies: unknown[]): Promise<number[]> {
  const { ids } = await deliver(queue, bodies);
  const stored = await rows(`message_id IN (SELECT value FROM json_each(?))`, JSON.stringify(ids));
  return stored.map((r) => r.id);
}

describe("queue routing", () => {
  it("routes each environment's queue names to its consumer, dead-letter queues to the dead-letter consumer of their family", () => {
    for (const suffix of ["dev", "staging", "prod"]) {
      expect(queueRouteOf(`feedback-events-${suffix}`)).toEqual({ consumer: "feedback" });
      expect(queueRouteOf(`analytics-events-${suffix}`)).toEqual({ consumer: "analytics" });
      expect(queueRouteOf(`feedback-events-dlq-${suffix}`)).toEqual({ consumer: "dead_letters", of: "feedback" });
      expect(queueRouteOf(`analytics-events-dlq-${suffix}`)).toEqual({ consumer: "dead_letters", of: "analytics" });
    }
    expect(queueRouteOf("orders")).toBeNull();
  });

  it("a batch from a queue no consumer knows is retried whole, never acked (nothing is lost to a misnamed queue)", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const { result } = await deliver("orders-events-dev", [await feedback("cus_dl_unrouted")]);
    expect(result.retryBatch).toMatchObject({ retry: true });
    expect(result.explicitAcks).toEqual([]);
    expect(await rows()).toEqual([]);
    expect(errors.mock.calls.flat().join(" ")).toContain("no consumer for queue");
  });
});

describe("GET /v1/admin/dead-letters", () => {
  it("lists oldest first with counts per queue, never the customer_ref column", async () => {
    const fb = await feedback("cus_dl_list");
    const [id1, id2] = await seedLetters(FEEDBACK_DLQ, [fb, { v: 0 }]);
    await seedLetters(ANALYTICS_DLQ, [{ v: 1, kind: "decision" }]);
    const res = await admin("/v1/admin/dead-letters");
    expect(res.status).toBe(200);
    const list = await res.json<ListJson>();
    expect(list.counts).toEqual({ feedback: 2, analytics: 1 });
    expect(list.next_cursor).toBeNull();
    expect(list.dead_letters.map((l) => l.queue)).toEqual(["feedback", "feedback", "analytics"]);
    expect(list.dead_letters[0]).toEqual({
      id: id1, queue: "feedback", message_id: expect.stringMatching(/^dlq_/), merchant_id: shop.merchantId, attempts: 1,
      received_at: expect.any(String), body: JSON.stringify(fb), truncated: false,
    });
    expect(list.dead_letters[1]).toMatchObject({ id: id2, merchant_id: null });
    expect(list.dead_letters.every((l) => !("customer_ref" in l))).toBe(true);
  });

  it("filters by queue and merchant_id, pages with limit and cursor", async () => {
    const other = await createMerchant();
    const mine = await Promise.all([1, 2, 3, 4, 5].map(() => feedback("cus_dl_page")));
    const ids = await seedLetters(FEEDBACK_DLQ, [...mine, { ...(await feedback("cus_x")), merchant_id: other.merchantId }]);
    await seedLetters(ANALYTICS_DLQ, [{ merchant_id: shop.merchantId }]);

    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = `queue=feedback&merchant_id=${shop.merchantId}&limit=2${cursor ? `&cursor=${cursor}` : ""}`;
      const page: ListJson = await (await admin(`/v1/admin/dead-letters?${q}`)).json<ListJson>();
      expect(page.dead_letters.length).toBeLessThanOrEqual(2);
      expect(page.counts).toEqual({ feedback: 6, analytics: 1 }); // counts ignore the filter
      seen.push(...page.dead_letters.map((l) => l.id as number));
      cursor = page.next_cursor;
      pages += 1;
    } while (cursor && pages < 10);
    expect(seen).toEqual(ids.slice(0, 5));
    expect(pages).toBe(3);

    const analytics = await (await admin("/v1/admin/dead-letters?queue=analytics")).json<ListJson>();
    expect(analytics.dead_letters.map((l) => l.queue)).toEqual(["analytics"]);
    const theirs = await (await admin(`/v1/admin/dead-letters?merchant_id=${other.merchantId}`)).json<ListJson>();
    expect(theirs.dead_letters.map((l) => l.id)).toEqual([ids[5]]);
  });

  it("400 VALIDATION_ERROR for a bad queue, limit, cursor or unknown parameter", async () => {
    for (const q of ["queue=orders", "limit=0", "limit=101", "limit=ten", "cursor=abc", "colour=blue"]) {
      await expectError(await admin(`/v1/admin/dead-letters?${q}`), 400, "VALIDATION_ERROR");
    }
  });
});

describe("POST /v1/admin/dead-letters/redrive", () => {
  /** Captures what the route sends, without the real queue delivering it in the background. */
  function captureSends(queue: Queue<unknown>) {
    return vi.spyOn(queue, "sendBatch").mockResolvedValue(undefined as never);
  }
  const sentBodies = (spy: ReturnType<typeof captureSends>) => spy.mock.calls.flatMap(([msgs]) => [...msgs].map((m) => m.body));

  it("re-sends to the original queue, removes exactly the rows sent, and the feedback consumer stores the event once", async () => {
    const a = await feedback("cus_dl_redrive_a");
    const b = await feedback("cus_dl_redrive_b");
    const [idA, idB] = await seedLetters(FEEDBACK_DLQ, [a, b]);
    const sends = captureSends(env.FEEDBACK_QUEUE);
    const analyticsSends = captureSends(env.ANALYTICS_QUEUE);

    const res = await post({ queue: "feedback", ids: [idA] });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ redriven: 1, remaining: 1 });
    expect(sends.mock.calls[0]![0]).toEqual([{ body: a, contentType: "json" }]);
    expect(analyticsSends).not.toHaveBeenCalled();
    expect((await rows()).map((r) => r.id)).toEqual([idB]);

    // The message lands on the feedback queue: the real consumer stores it, once even if delivered twice.
    const stored = await deliver("feedback-events-dev", sentBodies(sends));
    expect(stored.result.explicitAcks).toEqual(stored.ids);
    await deliver("feedback-events-dev", sentBodies(sends));
    expect(await countEvents(a.event_id)).toBe(1);
    expect(await uses(a.customer_ref, "klarna")).toBe(1);
  });

  it("a redriven event that had already been stored is still counted once", async () => {
    const e = await feedback("cus_dl_already", { method_id: "ideal" });
    // Dead-lettered first, then stored by another copy (the client sent it twice): the letter stays.
    const [id] = await seedLetters(FEEDBACK_DLQ, [e]);
    await deliver("feedback-events-dev", [e]);
    expect(await uses(e.customer_ref, "ideal")).toBe(1);
    const sends = captureSends(env.FEEDBACK_QUEUE);
    expect(await (await post({ queue: "feedback", ids: [id] })).json()).toEqual({ redriven: 1, remaining: 0 });
    const redelivered = await deliver("feedback-events-dev", sentBodies(sends));
    expect(redelivered.result.explicitAcks).toEqual(redelivered.ids);
    expect(await countEvents(e.event_id)).toBe(1);
    expect(await uses(e.customer_ref, "ideal")).toBe(1);
  });

  it("a re-driven letter whose event was stored meanwhile and then aged out by retention is dropped as expired, not counted twice", async () => {
    const e = await feedback("cus_dl_aged_out", { method_id: "ideal", occurred_at: iso(Date.now() - 89 * DAY_MS) });
    // Dead-lettered first (a D1 outage), then stored by the client's retry of the same event_id.
    const [id] = await seedLetters(FEEDBACK_DLQ, [e]);
    await deliver("feedback-events-dev", [e]);
    expect(await uses(e.customer_ref, "ideal")).toBe(1);
    // Two days on, retention removes the stored row (paid 91 days ago); the letter (received now) stays.
    const later = Date.now() + 2 * DAY_MS;
    await applyRetention(env, new Date(later));
    expect(await countEvents(e.event_id)).toBe(0);
    vi.useFakeTimers({ now: later + 60_000, toFake: ["Date"] });
    try {
      const sends = captureSends(env.FEEDBACK_QUEUE);
      expect(await (await post({ queue: "feedback", ids: [id] })).json()).toEqual({ redriven: 1, remaining: 0 });
      const redelivered = await deliver("feedback-events-dev", sentBodies(sends));
      expect(redelivered.result.explicitAcks).toEqual(redelivered.ids);
    } finally {
      vi.useRealTimers();
    }
    // API.md §2: at-least-once delivery never double-counts (nor stores a row retention would delete).
    expect(await countEvents(e.event_id)).toBe(0);
    expect(await uses(e.customer_ref, "ideal")).toBe(1);
  });

  it("a feedback message whose event is already stored is no letter, so a re-drive after retention removed the row cannot count it twice", async () => {
    const old = new Date(Date.now() - 89 * 86_400_000).toISOString();
    const e = await feedback("cus_dl_stored_then_dlq", { method_id: "ideal", occurred_at: old });
    await deliver("feedback-events-dev", [e]); // stored; the ack is lost and the message dead-lettered anyway
    const poison = { not: "a feedback body" };
    const { result } = await deliver(FEEDBACK_DLQ, [e, poison, "{not json"]);
    expect(result.explicitAcks).toHaveLength(3);
    expect((await rows()).map((r) => r.body)).toEqual([JSON.stringify(poison), JSON.stringify("{not json")]);
    // Two days on, retention removes the raw row (paid 91 days ago); nothing is left to re-drive it.
    await applyRetention(env, new Date(Date.now() + 2 * 86_400_000));
    expect(await countEvents(e.event_id)).toBe(0);
    expect(await uses(e.customer_ref, "ideal")).toBe(1);
    // A letter of an event not stored is kept, as before.
    const failed = await feedback("cus_dl_never_stored");
    await deliver(FEEDBACK_DLQ, [failed]);
    expect((await rows("message_id LIKE 'dlq_%'")).some((r) => JSON.parse(r.body).event_id === failed.event_id)).toBe(true);
  });

  it("end to end through the real queue: the redriven event shows up in usage_events", async () => {
    const e = await feedback("cus_dl_real_queue", { method_id: "google_pay" });
    const [id] = await seedLetters(FEEDBACK_DLQ, [e]);
    expect(await (await post({ queue: "feedback", ids: [id] })).json()).toEqual({ redriven: 1, remaining: 0 });
    let n = 0;
    for (let i = 0; i < 50 && n === 0; i++) {
      await new Promise((r) => setTimeout(r, 200));
      n = await countEvents(e.event_id);
    }
    expect(n).toBe(1);
    expect(await uses(e.customer_ref, "google_pay")).toBe(1);
  });

  it("without ids, takes the oldest `limit` letters of that queue only; truncated letters are never re-sent", async () => {
    const bodies = await Promise.all([1, 2, 3].map(() => feedback("cus_dl_limit")));
    const ids = await seedLetters(FEEDBACK_DLQ, [{ blob: "x".repeat(MAX_BODY_CHARS + 1) }, ...bodies]);
    const [analyticsId] = await seedLetters(ANALYTICS_DLQ, [{ kind: "decision" }]);
    const sends = captureSends(env.FEEDBACK_QUEUE);
    expect(await (await post({ queue: "feedback", limit: 2 })).json()).toEqual({ redriven: 2, remaining: 2 });
    expect(sentBodies(sends)).toEqual(bodies.slice(0, 2));
    // An analytics id or a truncated letter named under queue feedback is not sent.
    expect(await (await post({ queue: "feedback", ids: [ids[0]!, analyticsId!] })).json()).toEqual({ redriven: 0, remaining: 2 });
    expect(await (await post({ queue: "feedback" })).json()).toEqual({ redriven: 1, remaining: 1 });
    expect((await rows()).map((r) => r.id)).toEqual([ids[0], analyticsId]);
  });

  it("analytics letters go back to the analytics queue", async () => {
    const body = { v: 1, kind: "offers_shown", impression_id: "imp_rd", merchant_id: shop.merchantId, customer_ref: null, shown_at: new Date().toISOString(), offer_ids: ["o"] };
    const [id] = await seedLetters(ANALYTICS_DLQ, [body]);
    const sends = captureSends(env.ANALYTICS_QUEUE);
    const feedbackSends = captureSends(env.FEEDBACK_QUEUE);
    expect(await (await post({ queue: "analytics", ids: [id] })).json()).toEqual({ redriven: 1, remaining: 0 });
    expect(sentBodies(sends)).toEqual([body]);
    expect(feedbackSends).not.toHaveBeenCalled();
  });

  it("503 UNAVAILABLE when the queue refuses; the letters stay", async () => {
    const ids = await seedLetters(FEEDBACK_DLQ, [await feedback("cus_dl_503"), await feedback("cus_dl_503")]);
    vi.spyOn(env.FEEDBACK_QUEUE, "sendBatch").mockRejectedValue(new Error("Queue send failed: Too Many Requests"));
    await expectError(await post({ queue: "feedback", ids }), 503, "UNAVAILABLE");
    expect((await rows()).map((r) => r.id)).toEqual(ids);
  });

  it("400 VALIDATION_ERROR for a bad body", async () => {
    for (const body of [
      {}, { queue: "orders" }, { queue: "feedback", ids: [] }, { queue: "feedback", ids: [0] }, { queue: "feedback", ids: Array.from({ length: 101 }, (_, i) => i + 1) },
      { queue: "feedback", limit: 0 }, { queue: "feedback", limit: 101 }, { queue: "feedback", ids: [1], limit: 5 }, { queue: "feedback", extra: true },
    ]) {
      await expectError(await post(body), 400, "VALIDATION_ERROR");
    }
    await expectError(await admin("/v1/admin/dead-letters/redrive", { method: "POST", body: "{not json" }), 400, "INVALID_JSON");
  });
});

describe("DELETE /v1/admin/dead-letters/{id}", () => {
  it("204 discards the letter, then 404 NOT_FOUND; 400 for an id that is not a number", async () => {
    const [id, keep] = await seedLetters(FEEDBACK_DLQ, [{ v: 1 }, { v: 2 }]);
    const res = await admin(`/v1/admin/dead-letters/${id}`, { method: "DELETE" });
    expect(res.status).toBe(204);
    expect(await res.text()).toBe("");
    expect((await rows()).map((r) => r.id)).toEqual([keep]);
    await expectError(await admin(`/v1/admin/dead-letters/${id}`, { method: "DELETE" }), 404, "NOT_FOUND");
    await expectError(await admin("/v1/admin/dead-letters/abc", { method: "DELETE" }), 400, "VALIDATION_ERROR");
  });
});

describe("admin auth on the dead-letter routes", () => {
  const routes = [["GET", "/v1/admin/dead-letters"], ["POST", "/v1/admin/dead-letters/redrive"], ["DELETE", "/v1/admin/dead-letters/1"]] as const;

  it("401 INVALID_ADMIN_TOKEN without the token, with a wrong one, or with a merchant key", async () => {
    const [id] = await seedLetters(FEEDBACK_DLQ, [{ v: 1 }]);
    for (const [method, path] of routes) {
      const init = { method, body: method === "POST" ? JSON.stringify({ queue: "feedback" }) : undefined };
      await expectError(await api(null, path, init), 401, "INVALID_ADMIN_TOKEN");
      await expectError(await api(null, path, { ...init, headers: { Authorization: "Bearer wrong" } }), 401, "INVALID_ADMIN_TOKEN");
      await expectError(await api(null, path, { ...init, headers: { Authorization: `Bearer ${shop.secretKey}` } }), 401, "INVALID_ADMIN_TOKEN");
    }
    expect((await rows()).map((r) => r.id)).toEqual([id]);
  });

  // 404 when ADMIN_TOKEN is not set: admin.test.ts walks every documented admin route, these included.
});

describe("data lifecycle", () => {
  it("the purge of a customer deletes their dead letters at that merchant (and ones naming no merchant), nobody else's", async () => {
    const other = await createMerchant();
    const ref = await customerRef(env.PII_KEY, "cus_dl_purge");
    const mine = await feedback("cus_dl_purge");
    const neighbour = await feedback("cus_dl_neighbour");
    const atOther = { ...(await feedback("cus_dl_purge")), merchant_id: other.merchantId };
    const [, , keepNeighbour, keepOther] = await seedLetters(FEEDBACK_DLQ, [mine, { customer_ref: ref, broken: true }, neighbour, atOther]);
    await seedLetters(ANALYTICS_DLQ, [{ kind: "decision", merchant_id: shop.merchantId, customer_ref: ref }]);
    expect((await rows("customer_ref = ?", ref)).length).toBe(4);

    const { purge_after } = await (await api(shop.secretKey, "/v1/personalize/customers/cus_dl_purge", { method: "DELETE" })).json<{ purge_after: string }>();
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ scheduledTime: Date.parse(purge_after), cron: DATA_LIFECYCLE_CRON }), env, ctx);
    await waitOnExecutionContext(ctx);
    expect((await rows()).map((r) => r.id)).toEqual([keepNeighbour, keepOther]);
  });

  it("a letter reaching the dead-letter queue after its customer's purge is dropped when its data was accepted before the purge; one accepted after it is kept", async () => {
    const other = await createMerchant();
    const cid = "cus_dl_late";
    const ref = await customerRef(env.PII_KEY, cid);
    const before = await feedback(cid); // accepted in the grace period, still retrying at the purge
    const decision = { v: 1, kind: "decision", merchant_id: shop.merchantId, customer_ref: ref, issued_at: before.received_at };
    const { purge_after } = await (await api(shop.secretKey, `/v1/personalize/customers/${cid}`, { method: "DELETE" })).json<{ purge_after: string }>();
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ scheduledTime: Date.parse(purge_after), cron: DATA_LIFECYCLE_CRON }), env, ctx);
    await waitOnExecutionContext(ctx);
    const purgedAt = (await env.DB.prepare("SELECT purged_at FROM customer_deletions WHERE merchant_id = ? AND customer_ref = ?").bind(shop.merchantId, ref).first<{ purged_at: string }>())!.purged_at;
    const after = await feedback(cid, { received_at: new Date(Date.parse(purgedAt) + 1000).toISOString() }); // the customer came back
    const atOther = { ...(await feedback(cid)), merchant_id: other.merchantId };
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});

    const fb = await deliver(FEEDBACK_DLQ, [before, after, atOther, { customer_ref: ref, broken: true }]);
    expect(fb.result.explicitAcks).toHaveLength(4);
    const an = await deliver(ANALYTICS_DLQ, [decision]);
    expect(an.result.explicitAcks).toHaveLength(1);

    // Kept: the later payment, the one at another merchant, and the body naming no merchant (no consumer's; a later purge takes it).
    const kept = await rows("customer_ref = ?", ref);
    expect(kept.map((r) => JSON.parse(r.body).event_id ?? "broken")).toEqual([after.event_id, atOther.event_id, "broken"]);
    const lines = logLines(warn).filter((l) => l.message === "dead letters stored");
    expect(lines.map((l) => [l.stored, l.dropped_purged, l.duplicates])).toEqual([[3, 1, 0], [0, 1, 0]]);
    const exported = await (await api(shop.secretKey, `/v1/personalize/customers/${cid}/export`)).json<{ status: string; undelivered_messages: unknown[] }>();
    expect(exported.undelivered_messages).toHaveLength(1); // only the payment made after the purge
  });

  it("a letter with data from before the purge, arriving while a new deletion reopened the tombstone, is not stored either (a restore would keep it)", async () => {
    const cid = "cus_dl_reopened";
    const ref = await customerRef(env.PII_KEY, cid);
    const before = await feedback(cid);
    const path = `/v1/personalize/customers/${cid}`;
    const { purge_after } = await (await api(shop.secretKey, path, { method: "DELETE" })).json<{ purge_after: string }>();
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ scheduledTime: Date.parse(purge_after), cron: DATA_LIFECYCLE_CRON }), env, ctx);
    await waitOnExecutionContext(ctx);
    expect((await api(shop.secretKey, path, { method: "DELETE" })).status).toBe(202);
    vi.spyOn(console, "warn").mockImplementation(() => {});
    expect((await deliver(FEEDBACK_DLQ, [before])).result.explicitAcks).toHaveLength(1);
    expect((await api(shop.secretKey, `${path}/restore`, { method: "POST" })).status).toBe(200);
    expect(await rows("customer_ref = ?", ref)).toEqual([]);
  });

  it("retention deletes dead letters older than the raw-event window (90 days), keeps younger ones", async () => {
    const [old, young] = await seedLetters(FEEDBACK_DLQ, [{ v: 1 }, { v: 2 }]);
    const now = Date.now();
    await env.DB.prepare("UPDATE dead_letters SET received_at = ? WHERE id = ?").bind(iso(now - 91 * DAY_MS), old).run();
    await env.DB.prepare("UPDATE dead_letters SET received_at = ? WHERE id = ?").bind(iso(now - 89 * DAY_MS), young).run();
    const report = await applyRetention(env, new Date(now));
    expect(report.deleted.dead_letters).toBe(1);
    expect((await rows()).map((r) => r.id)).toEqual([young]);
  });
});
