import { createExecutionContext, createMessageBatch, env, getQueueResult, type MessageBatchMessage, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { customerRef } from "../../src/crypto/pseudonym";
import worker from "../../src/index";
import { retryDelaySeconds } from "../../src/jobs/delivery";
import { purgeDueCustomers } from "../../src/jobs/purge";
import { applyRetention } from "../../src/jobs/retention";
import { MAX_PEER_DROPS, REFRESH_RETRY_MS } from "../../src/jobs/feedbackConsumer";
import { recencyRef } from "../../src/personalization/recency";
import type { FeedbackMessage } from "../../src/schemas/feedback";
import { loadProfile, loadProfiles, type Profile, type ProfileKey, profileKey } from "../../src/storage/profile";
import { api, createMerchant, type TestMerchant } from "../helpers/fixtures";
import { countD1Queries } from "../helpers/queryCount";

const QUEUE = "feedback-events-dev";
let shop: TestMerchant;

beforeAll(async () => {
  shop = await createMerchant();
});

afterEach(() => vi.restoreAllMocks());

let seq = 0;
async function message(customerId: string, fields: Partial<FeedbackMessage> = {}): Promise<FeedbackMessage> {
  seq += 1;
  const eventId = `ev_${seq}`;
  const now = new Date(Date.now() - 60_000).toISOString();
  return {
    v: 1,
    merchant_id: shop.merchantId,
    customer_ref: await customerRef(env.PII_KEY, customerId),
    event_id: eventId,
    method_id: "visa",
    amount: 2500,
    currency: "EUR",
    device_type: "mobile",
    location_country: "NL",
    offer_id: null,
    occurred_at: now,
    received_at: now,
    decision: null,
    ...fields,
  };
}

/**
 * Delivers bodies to the real queue handler and returns the ack/retry result. getQueueResult does
 * not report retry delays, so each message's retry() is spied on (calling through) to read them.
 */
async function deliver(bodies: unknown[], attempts = 1) {
  const messages: MessageBatchMessage[] = bodies.map((body, i) => ({ id: `msg_${seq}_${i}_${attempts}`, timestamp: new Date(), attempts, body }));
  const batch = createMessageBatch(QUEUE, messages);
  const retrySpies = batch.messages.map((m) => vi.spyOn(m, "retry"));
  const ctx = createExecutionContext();
  await worker.queue(batch, env, ctx);
  const delays = retrySpies.flatMap((s) => s.mock.calls.map(([opts]) => opts?.delaySeconds));
  return { ids: messages.map((m) => m.id), result: await getQueueResult(batch, ctx), delays };
}

async function countEvents(where: string, ...binds: unknown[]): Promise<number> {
  const row = await env.DB.prepare(`SELECT count(*) AS n FROM usage_events WHERE ${where}`).bind(...binds).first<{ n: number }>();
  return row!.n;
}

async function stat(ref: string, method: string, bucket = "*") {
  return env.DB.prepare("SELECT uses, weight_ref FROM method_stats WHERE merchant_id = ? AND customer_ref = ? AND bucket = ? AND method_id = ?")
    .bind(shop.merchantId, ref, bucket, method)
    .first<{ uses: number; weight_ref: number }>();
}

/**
 * Follows every statement the real D1 prepares and binds (a bound statement is a new object), so a
 * test can tell which SQL and values went into which batch call. Calls through to the real D1.
 */
function traceStatements(onStatement: (stmt: D1PreparedStatement, sql: string, values: unknown[]) => void) {
  const realPrepare = env.DB.prepare.bind(env.DB);
  return vi.spyOn(env.DB, "prepare").mockImplementation((sql: string) => {
    const stmt = realPrepare(sql);
    const realBind = stmt.bind.bind(stmt);
    stmt.bind = (...values: unknown[]) => {
      const bound = realBind(...values);
      onStatement(bound, sql, values);
      return bound;
    };
    onStatement(stmt, sql, []);
    return stmt;
  });
}

describe("feedback queue consumer", () => {
  it("the same event delivered 5× (in one batch and redelivered) is stored and counted once", async () => {
    const m = await message("cus_dup", { method_id: "klarna" });
    const first = await deliver([m, m, m]);
    expect(first.result.explicitAcks.sort()).toEqual([...first.ids].sort());
    await deliver([m], 2);
    await deliver([m], 3);
    expect(await countEvents("merchant_id = ? AND event_id = ?", shop.merchantId, m.event_id)).toBe(1);
    for (const bucket of ["*", "device:mobile", "country:NL", "amount:1"]) {
      const s = await stat(m.customer_ref, "klarna", bucket);
      expect(s?.uses).toBe(1);
      expect(s?.weight_ref).toBeCloseTo(recencyRef(Date.parse(m.occurred_at)), 9);
    }
    const pop = await env.DB.prepare("SELECT uses FROM method_popularity WHERE merchant_id = ? AND segment = '*' AND method_id = 'klarna'").bind(shop.merchantId).first<{ uses: number }>();
    expect(pop?.uses).toBe(1);
  });

  it("a batch of 100 lands with ONE D1 batch holding every insert", async () => {
    // Spies call through to the real D1: they only record which SQL went into which batch call
    // (a bound statement is a new object, so bind() is followed too).
    const sqlOf = new WeakMap<object, string>();
    traceStatements((stmt, sql) => sqlOf.set(stmt, sql));
    const batchSpy = vi.spyOn(env.DB, "batch");
    const bodies = await Promise.all(Array.from({ length: 100 }, (_, i) => message(`cus_bulk_${i % 10}`)));
    const { ids, result } = await deliver(bodies);

    const insertsPerCall = batchSpy.mock.calls.map(([stmts]) => stmts.filter((s) => /INSERT INTO usage_events/.test(sqlOf.get(s) ?? "")).length);
    expect(insertsPerCall.filter((n) => n > 0)).toEqual([100]);
    const allPrepared = vi.mocked(env.DB.prepare).mock.calls.filter(([sql]) => /INSERT INTO usage_events/.test(sql)).length;
    expect(allPrepared).toBe(100); // no insert ran outside that batch
    expect(result.explicitAcks.length).toBe(100);
    expect(new Set(result.explicitAcks)).toEqual(new Set(ids));
    expect(await countEvents("merchant_id = ? AND event_id IN (SELECT value FROM json_each(?))", shop.merchantId, JSON.stringify(bodies.map((b) => b.event_id)))).toBe(100);
  });

  it("a failing D1 write retries with growing backoff and later succeeds without duplicates", async () => {
    const m1 = await message("cus_retry", { method_id: "paypal" });
    const m2 = await message("cus_retry", { method_id: "paypal" });

    vi.spyOn(env.DB, "batch").mockRejectedValueOnce(new Error("D1_ERROR: Network connection lost."));
    const failed = await deliver([m1, m2], 1);
    expect(failed.result.explicitAcks).toEqual([]);
    expect(failed.result.retryMessages).toEqual(failed.ids.map((msgId) => ({ msgId })));
    expect(failed.delays).toEqual([retryDelaySeconds(1), retryDelaySeconds(1)]);
    expect(await countEvents("merchant_id = ? AND customer_ref = ?", shop.merchantId, m1.customer_ref)).toBe(0);

    // Second attempt: the write commits but the answer is lost (the worst case for duplicates). A
    // delivery that failed before is then stored message by message: both rows already exist, so
    // each is a duplicate, acked, and nothing counts twice.
    const realBatch = env.DB.batch.bind(env.DB);
    vi.spyOn(env.DB, "batch").mockImplementationOnce(async (stmts) => {
      await realBatch(stmts);
      throw new Error("D1_ERROR: timeout after commit");
    });
    const lost = await deliver([m1, m2], 2);
    expect(lost.result.retryMessages).toEqual([]);
    expect(lost.result.explicitAcks.sort()).toEqual([...lost.ids].sort());
    expect(retryDelaySeconds(2)).toBeGreaterThan(retryDelaySeconds(1));

    // A later redelivery of the same events changes nothing either.
    const again = await deliver([m1, m2], 3);
    expect(again.result.retryMessages).toEqual([]);
    expect(await countEvents("merchant_id = ? AND customer_ref = ?", shop.merchantId, m1.customer_ref)).toBe(2);
    expect((await stat(m1.customer_ref, "paypal"))?.uses).toBe(2);
  });

  it("a message that keeps failing is isolated on redelivery: its neighbours are stored, only it retries", async () => {
    const good1 = await message("cus_isolate_a", { method_id: "klarna" });
    const bad = await message("cus_isolate_b");
    const good2 = await message("cus_isolate_c", { method_id: "klarna" });
    // The real D1, except that any batch holding the bad event's insert fails (a row D1 keeps refusing).
    const badStatements = new WeakSet<object>();
    traceStatements((stmt, _sql, values) => {
      if (values.includes(bad.event_id)) badStatements.add(stmt);
    });
    const realBatch = env.DB.batch.bind(env.DB);
    vi.spyOn(env.DB, "batch").mockImplementation(async (stmts) => {
      if (stmts.some((st) => badStatements.has(st))) throw new Error("D1_ERROR: SQLITE_CONSTRAINT");
      return realBatch(stmts);
    });

    const first = await deliver([good1, bad, good2], 1);
    expect(first.result.retryMessages.map((r) => r.msgId)).toEqual(first.ids); // first failure: all retry together
    const second = await deliver([good1, bad, good2], 2);
    expect(second.result.retryMessages).toEqual([{ msgId: second.ids[1] }]);
    expect(second.result.explicitAcks.sort()).toEqual([second.ids[0], second.ids[2]].sort());
    expect(second.delays).toEqual([retryDelaySeconds(2)]);
    expect((await stat(good1.customer_ref, "klarna"))?.uses).toBe(1);
    expect((await stat(good2.customer_ref, "klarna"))?.uses).toBe(1);
    expect(await countEvents("merchant_id = ? AND customer_ref = ?", shop.merchantId, bad.customer_ref)).toBe(0);
  });

  it("an occurred_at the model cannot weigh is poison, acked before it can fail a batch", async () => {
    const good = await message("cus_far_future_neighbour");
    const far = { ...(await message("cus_far_future")), occurred_at: "9999-01-01T00:00:00.000Z" };
    const { ids, result } = await deliver([good, far]);
    expect(result.retryMessages).toEqual([]);
    expect(new Set(result.explicitAcks)).toEqual(new Set(ids));
    expect(await countEvents("merchant_id = ? AND customer_ref = ?", shop.merchantId, good.customer_ref)).toBe(1);
    expect(await countEvents("merchant_id = ? AND customer_ref = ?", shop.merchantId, far.customer_ref)).toBe(0);
  });

  it("poison messages are acked and logged and never block the valid ones", async () => {
    const good1 = await message("cus_poison_a");
    const good2 = await message("cus_poison_b");
    // An error line each, never a warning: the message is acked and lost.
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    const warn = vi.spyOn(console, "warn");
    const bodies = [good1, "not json", { ...good2, v: 2, event_id: "ev_v2" }, { ...good2, event_id: "e".repeat(129) }, null, good2];
    const { ids, result } = await deliver(bodies);
    expect(result.retryMessages).toEqual([]);
    expect(new Set(result.explicitAcks)).toEqual(new Set(ids));
    expect(await countEvents("event_id IN (?, ?)", good1.event_id, good2.event_id)).toBe(2);
    expect(await countEvents("event_id IN ('ev_v2', ?)", "e".repeat(129))).toBe(0);
    expect(error.mock.calls.filter(([line]) => String(line).includes("poison feedback message")).length).toBe(4);
    expect(warn.mock.calls.filter(([line]) => String(line).includes("poison"))).toEqual([]);
  });

  it("a delivery that is all poison still logs `feedback batch stored`, with zeros and its poison count", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const log = vi.spyOn(console, "log");
    const { ids, result } = await deliver(["not json", { v: 2 }]);
    expect(result.explicitAcks).toEqual(ids);
    const summary = log.mock.calls.map(([l]) => JSON.parse(String(l)) as Record<string, unknown>).find((l) => l.message === "feedback batch stored");
    expect(summary).toMatchObject({ messages: 2, stored: 0, duplicates: 0, dropped_opted_out: 0, dropped_expired: 0, poison: 2 });
  });

  it("events of opted-out and pending-deletion customers are dropped (acked, not stored, not counted)", async () => {
    const now = new Date().toISOString();
    const optedOut = await customerRef(env.PII_KEY, "cus_optout");
    const deleted = await customerRef(env.PII_KEY, "cus_deleted");
    await env.DB.batch([
      env.DB.prepare("INSERT INTO preferences (merchant_id, customer_ref, personalization_enabled, created_at, updated_at) VALUES (?, ?, 0, ?, ?)").bind(shop.merchantId, optedOut, now, now),
      env.DB.prepare("INSERT INTO customer_deletions (merchant_id, customer_ref, status, requested_at, purge_after) VALUES (?, ?, 'pending', ?, ?)").bind(shop.merchantId, deleted, now, now),
    ]);
    const log = vi.spyOn(console, "log");
    const bodies = [await message("cus_optout", { method_id: "ideal" }), await message("cus_deleted", { method_id: "ideal" }), await message("cus_kept", { method_id: "ideal" })];
    const { ids, result } = await deliver(bodies);
    expect(new Set(result.explicitAcks)).toEqual(new Set(ids));
    expect(await countEvents("customer_ref IN (?, ?)", optedOut, deleted)).toBe(0);
    expect(await stat(optedOut, "ideal")).toBeNull();
    expect(await stat(deleted, "ideal")).toBeNull();
    expect((await stat(bodies[2]!.customer_ref, "ideal"))?.uses).toBe(1);
    const summary = log.mock.calls.map(([l]) => JSON.parse(String(l)) as Record<string, unknown>).find((l) => l.message === "feedback batch stored");
    expect(summary).toMatchObject({ stored: 1, dropped_opted_out: 1, dropped_pending_deletion: 1, duplicates: 0 });
  });

  it("a redelivered batch stored message by message logs the same counters: drops by reason, duplicates apart from stored", async () => {
    const now = new Date().toISOString();
    const optedOut = await customerRef(env.PII_KEY, "cus_split_optout");
    await env.DB.prepare("INSERT INTO preferences (merchant_id, customer_ref, personalization_enabled, created_at, updated_at) VALUES (?, ?, 0, ?, ?)").bind(shop.merchantId, optedOut, now, now).run();
    const already = await message("cus_split_stored");
    await deliver([already]);
    const bodies = [await message("cus_split_optout"), already, await message("cus_split_new")];
    // This redelivery's whole-batch write fails, so the consumer goes message by message.
    vi.spyOn(env.DB, "batch").mockRejectedValueOnce(new Error("D1_ERROR: Network connection lost."));
    vi.spyOn(console, "error").mockImplementation(() => {});
    const log = vi.spyOn(console, "log");
    const { result } = await deliver(bodies, 2);
    expect(result.explicitAcks).toHaveLength(3);
    const summary = log.mock.calls.map(([l]) => JSON.parse(String(l)) as Record<string, unknown>).find((l) => l.message === "feedback batch stored message by message");
    expect(summary).toMatchObject({ messages: 3, stored: 1, duplicates: 1, dropped_opted_out: 1, dropped_pending_deletion: 0, dropped_purged: 0, dropped_expired: 0, conversions_expired: 0, failed: 0, poison: 0 });
  });

  it("what counts is the customer's state when the event was received: opted out then, or pending deletion then, is dropped after an opt-in or a restore", async () => {
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const between = (a: string, b: string) => new Date((Date.parse(a) + Date.parse(b)) / 2).toISOString();
    const put = (customer_id: string, enabled: boolean) =>
      api(shop.secretKey, "/v1/personalize/preferences", { method: "PUT", body: JSON.stringify({ customer_id, personalization_enabled: enabled }) });
    const lastAt = async (table: string, ref: string) =>
      (await env.DB.prepare(`SELECT created_at FROM ${table} WHERE merchant_id = ? AND customer_ref = ? ORDER BY id DESC LIMIT 1`).bind(shop.merchantId, ref).first<{ created_at: string }>())!.created_at;

    const optRef = await customerRef(env.PII_KEY, "cus_receipt_opt");
    const beforeOptOut = new Date(Date.now() - 1000).toISOString();
    expect((await put("cus_receipt_opt", false)).status).toBe(200);
    const optedOutAt = await lastAt("consent_log", optRef);
    await sleep(10);
    expect((await put("cus_receipt_opt", true)).status).toBe(200);
    const optedInAt = await lastAt("consent_log", optRef);

    const delRef = await customerRef(env.PII_KEY, "cus_receipt_del");
    expect((await api(shop.secretKey, "/v1/personalize/customers/cus_receipt_del", { method: "DELETE" })).status).toBe(202);
    const deletedAt = await lastAt("data_rights_audit", delRef);
    await sleep(10);
    expect((await api(shop.secretKey, "/v1/personalize/customers/cus_receipt_del/restore", { method: "POST" })).status).toBe(200);
    const restoredAt = await lastAt("data_rights_audit", delRef);
    await sleep(10);
    const now = new Date().toISOString();

    const at = (t: string) => ({ received_at: t, occurred_at: t });
    const whileOptedOut = await message("cus_receipt_opt", { method_id: "ideal", ...at(between(optedOutAt, optedInAt)) });
    const beforeIt = await message("cus_receipt_opt", { method_id: "visa", ...at(beforeOptOut) });
    const afterOptIn = await message("cus_receipt_opt", { method_id: "visa", ...at(now) });
    const whilePending = await message("cus_receipt_del", { method_id: "ideal", ...at(between(deletedAt, restoredAt)) });
    const afterRestore = await message("cus_receipt_del", { method_id: "visa", ...at(now) });
    const log = vi.spyOn(console, "log");
    const { result } = await deliver([whileOptedOut, beforeIt, afterOptIn, whilePending, afterRestore], 3);
    expect(result.explicitAcks).toHaveLength(5);
    const stored = async (m: FeedbackMessage) => countEvents("merchant_id = ? AND event_id = ?", shop.merchantId, m.event_id);
    expect([await stored(whileOptedOut), await stored(beforeIt), await stored(afterOptIn), await stored(whilePending), await stored(afterRestore)]).toEqual([0, 1, 1, 0, 1]);
    expect(await stat(optRef, "ideal")).toBeNull();
    expect(await stat(delRef, "ideal")).toBeNull();
    const summary = log.mock.calls.map(([l]) => JSON.parse(String(l)) as Record<string, unknown>).find((l) => l.message === "feedback batch stored");
    expect(summary).toMatchObject({ stored: 3, dropped_opted_out: 1, dropped_pending_deletion: 1, duplicates: 0 });
  });

  it("an event received before the customer's purge but consumed after it is dropped; one received after the purge is stored", async () => {
    const ref = await customerRef(env.PII_KEY, "cus_purged_in_flight");
    const requested = new Date(Date.now() - 31 * 86_400_000).toISOString();
    await env.DB.prepare("INSERT INTO customer_deletions (merchant_id, customer_ref, status, requested_at, purge_after) VALUES (?, ?, 'pending', ?, ?)")
      .bind(shop.merchantId, ref, requested, new Date(Date.now() - 86_400_000).toISOString())
      .run();
    // Accepted (204) during the grace period, still on the queue when the purge runs (a delay, a retry after a D1 failure).
    const inFlight = await message("cus_purged_in_flight", { method_id: "ideal" });
    expect((await purgeDueCustomers(env, new Date())).customers_purged).toBeGreaterThanOrEqual(1);
    const later = new Date(Date.now() + 1_000).toISOString(); // the customer came back after the purge
    const cameBack = await message("cus_purged_in_flight", { method_id: "visa", received_at: later, occurred_at: later });
    const log = vi.spyOn(console, "log");
    const { ids, result } = await deliver([inFlight, cameBack]);
    expect(new Set(result.explicitAcks)).toEqual(new Set(ids));
    expect(await countEvents("customer_ref = ? AND event_id = ?", ref, inFlight.event_id)).toBe(0);
    expect(await stat(ref, "ideal")).toBeNull();
    expect(await countEvents("customer_ref = ? AND event_id = ?", ref, cameBack.event_id)).toBe(1);
    const summary = log.mock.calls.map(([l]) => JSON.parse(String(l)) as Record<string, unknown>).find((l) => l.message === "feedback batch stored");
    expect(summary).toMatchObject({ stored: 1, dropped_purged: 1, duplicates: 0 });
  });

  it("an event received after the purge run's scheduled time but before its mark committed met a pending customer: dropped", async () => {
    const ref = await customerRef(env.PII_KEY, "cus_late_cron");
    await env.DB.prepare("INSERT INTO customer_deletions (merchant_id, customer_ref, status, requested_at, purge_after) VALUES (?, ?, 'pending', ?, ?)")
      .bind(shop.merchantId, ref, new Date(Date.now() - 31 * 86_400_000).toISOString(), new Date(Date.now() - 60_000).toISOString())
      .run();
    await env.DB.prepare("INSERT INTO data_rights_audit (merchant_id, customer_ref, action, actor, request_id, created_at) VALUES (?, ?, 'delete', 'api', NULL, ?)")
      .bind(shop.merchantId, ref, new Date(Date.now() - 31 * 86_400_000).toISOString())
      .run();
    const receivedAt = new Date(Date.now() - 50).toISOString();
    const inFlight = await message("cus_late_cron", { method_id: "ideal", received_at: receivedAt, occurred_at: receivedAt });
    // The cron was scheduled 2 s before that receipt and reaches the mark only now (it starts late, rollups run first).
    expect((await purgeDueCustomers(env, new Date(Date.parse(receivedAt) - 2_000))).customers_purged).toBe(1);
    const tombstone = await env.DB.prepare("SELECT purged_at FROM customer_deletions WHERE merchant_id = ? AND customer_ref = ?").bind(shop.merchantId, ref).first<{ purged_at: string }>();
    expect(tombstone!.purged_at >= receivedAt).toBe(true);
    const audit = await env.DB.prepare("SELECT created_at FROM data_rights_audit WHERE merchant_id = ? AND customer_ref = ? AND action = 'purge'").bind(shop.merchantId, ref).first<{ created_at: string }>();
    expect(audit!.created_at >= receivedAt).toBe(true);
    const { ids, result } = await deliver([inFlight]);
    expect(result.explicitAcks).toEqual(ids);
    expect(await countEvents("customer_ref = ? AND event_id = ?", ref, inFlight.event_id)).toBe(0);
  });

  it("a redelivery after the daily retention removed the stored row is dropped as expired (logged), not counted twice", async () => {
    const e = await message("cus_aged_out", { method_id: "paypal", occurred_at: new Date(Date.now() - 90 * 86_400_000 + 10 * 60_000).toISOString() });
    await deliver([e]);
    expect((await stat(e.customer_ref, "paypal"))?.uses).toBe(1);
    // Four hours on, the event is past the raw horizon (90 days back, hour-aligned, less two hours): retention removes its row.
    const later = Date.now() + 4 * 3_600_000;
    await applyRetention(env, new Date(later));
    expect(await countEvents("merchant_id = ? AND event_id = ?", shop.merchantId, e.event_id)).toBe(0);
    const log = vi.spyOn(console, "log");
    vi.useFakeTimers({ now: later + 60_000, toFake: ["Date"] });
    try {
      const { ids, result } = await deliver([e], 2); // the same message again (its ack was lost)
      expect(result.explicitAcks).toEqual(ids);
    } finally {
      vi.useRealTimers();
    }
    expect(await countEvents("merchant_id = ? AND event_id = ?", shop.merchantId, e.event_id)).toBe(0);
    expect((await stat(e.customer_ref, "paypal"))?.uses).toBe(1);
    const summary = log.mock.calls.map(([l]) => JSON.parse(String(l)) as Record<string, unknown>).find((l) => l.message === "feedback batch stored");
    expect(summary).toMatchObject({ stored: 0, dropped_expired: 1, duplicates: 0 });
  });

  it("a profile KV refused to rewrite (one write per key per second) is reloaded and written again a moment later", async () => {
    const ref = await customerRef(env.PII_KEY, "cus_kv_busy");
    const key = profileKey(shop.merchantId, ref);
    const realPut = env.CACHE.put.bind(env.CACHE);
    let refused = 0;
    vi.spyOn(env.CACHE, "put").mockImplementation(async (k: string, ...rest: unknown[]) => {
      if (k === key && refused++ === 0) throw new Error("KV PUT failed: 429 Too Many Requests");
      return (realPut as (...a: unknown[]) => Promise<void>)(k, ...rest);
    });
    const warnings = vi.spyOn(console, "warn").mockImplementation(() => {});
    const started = Date.now();
    await deliver([await message("cus_kv_busy", { method_id: "klarna" }), await message("cus_kv_other", { method_id: "visa" })]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(REFRESH_RETRY_MS);
    expect(refused).toBe(2);
    const cached = await env.CACHE.get<Profile>(key, "json");
    expect(cached?.stats.find((s) => s.bucket === "*")).toMatchObject({ method_id: "klarna", uses: 1 });
    expect(warnings.mock.calls.flat().join(" ")).toContain("needed a retry");
  });

  it("a profile that cannot be rewritten twice is logged as an error; the events stay stored and acked", async () => {
    const ref = await customerRef(env.PII_KEY, "cus_kv_down");
    const key = profileKey(shop.merchantId, ref);
    const realPut = env.CACHE.put.bind(env.CACHE);
    vi.spyOn(env.CACHE, "put").mockImplementation(async (k: string, ...rest: unknown[]) => {
      if (k === key) throw new Error("KV PUT failed: 503");
      return (realPut as (...a: unknown[]) => Promise<void>)(k, ...rest);
    });
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const m = await message("cus_kv_down", { method_id: "klarna" });
    const { result } = await deliver([m]);
    expect(result.explicitAcks).toHaveLength(1);
    expect(await countEvents("event_id = ?", m.event_id)).toBe(1);
    expect(errors.mock.calls.flat().join(" ")).toContain('"failed":1');
  });

  it("a redelivery of an event whose first write committed but failed to answer refreshes the cached profile (no double count)", async () => {
    const ref = await customerRef(env.PII_KEY, "cus_commit_lost");
    const key = profileKey(shop.merchantId, ref);
    const stale: Profile = { preferences: null, stats: [], pending_deletion: false, cross_merchant: [] };
    await env.CACHE.put(key, JSON.stringify(stale));
    const m = await message("cus_commit_lost", { method_id: "ideal" });
    const realBatch = env.DB.batch.bind(env.DB);
    const spy = vi.spyOn(env.DB, "batch").mockImplementationOnce(async (stmts) => {
      await realBatch(stmts);
      throw new Error("D1_ERROR: Network connection lost.");
    });
    vi.spyOn(console, "error").mockImplementation(() => {});
    const first = await deliver([m]);
    expect(first.result.retryMessages).toHaveLength(1);
    expect(await countEvents("event_id = ?", m.event_id)).toBe(1); // committed
    expect(await env.CACHE.get<Profile>(key, "json")).toEqual(stale); // and never refreshed
    spy.mockRestore();

    const second = await deliver([m], 2);
    expect(second.result.explicitAcks).toHaveLength(1);
    expect(await countEvents("event_id = ?", m.event_id)).toBe(1);
    expect((await stat(ref, "ideal"))?.uses).toBe(1);
    const cached = await env.CACHE.get<Profile>(key, "json");
    expect(cached?.stats.find((s) => s.bucket === "*")).toMatchObject({ method_id: "ideal", uses: 1 });
  });

  it("a redelivered batch that is stored message by message refreshes the profiles of its already-stored events too", async () => {
    const ref = await customerRef(env.PII_KEY, "cus_commit_lost_2");
    const key = profileKey(shop.merchantId, ref);
    const stale: Profile = { preferences: null, stats: [], pending_deletion: false, cross_merchant: [] };
    const m = await message("cus_commit_lost_2", { method_id: "ideal" });
    const other = await message("cus_commit_lost_3", { method_id: "visa" });
    await deliver([m]);
    await env.CACHE.put(key, JSON.stringify(stale)); // as if the refresh after the first write had not run
    const realBatch = env.DB.batch.bind(env.DB);
    // The first batch write of the redelivery fails, so it is stored one by one.
    vi.spyOn(env.DB, "batch").mockImplementationOnce(async () => {
      throw new Error("D1_ERROR: Network connection lost.");
    }).mockImplementation(realBatch);
    vi.spyOn(console, "error").mockImplementation(() => {});
    const { result } = await deliver([m, other], 2);
    expect(result.explicitAcks).toHaveLength(2);
    expect(await countEvents("event_id = ?", m.event_id)).toBe(1);
    const cached = await env.CACHE.get<Profile>(key, "json");
    expect(cached?.stats.find((s) => s.bucket === "*")).toMatchObject({ method_id: "ideal", uses: 1 });
  });

  it("refreshes the cached profile of every touched customer after the batch", async () => {
    const ref = await customerRef(env.PII_KEY, "cus_cache");
    const stale: Profile = { preferences: null, stats: [], pending_deletion: false, cross_merchant: [] };
    await env.CACHE.put(profileKey(shop.merchantId, ref), JSON.stringify(stale));
    await deliver([await message("cus_cache", { method_id: "google_pay" }), await message("cus_cache_2", { method_id: "apple_pay" })]);
    const cached = await env.CACHE.get<Profile>(profileKey(shop.merchantId, ref), "json");
    expect(cached?.stats.find((s) => s.bucket === "*")).toMatchObject({ method_id: "google_pay", uses: 1 });
    const other = await env.CACHE.get<Profile>(profileKey(shop.merchantId, await customerRef(env.PII_KEY, "cus_cache_2")), "json");
    expect(other?.stats.find((s) => s.bucket === "*")).toMatchObject({ method_id: "apple_pay", uses: 1 });
  });

  it("stores the decision id and the fields the aggregates need", async () => {
    const m = await message("cus_fields", {
      amount: 60_000, currency: "USD", device_type: "desktop", location_country: "US", offer_id: "promo_1",
      decision: { decision_id: "dec_x.y", arm: "treatment", fallback_reason: null, rank: 2, issued_at: new Date().toISOString() },
    });
    await deliver([m]);
    const row = await env.DB.prepare("SELECT decision_id, offer_id, amount_band, recency_ref, occurred_at FROM usage_events WHERE event_id = ?").bind(m.event_id).first();
    expect(row).toMatchObject({ decision_id: "dec_x.y", offer_id: "promo_1", amount_band: 3, occurred_at: m.occurred_at });
    expect((await stat(m.customer_ref, "visa", "amount:3"))?.uses).toBe(1);
  });
});

describe("D1's 1,000 queries per invocation (Miniflare does not enforce it)", () => {
  it("a full delivery stays under it, even on the worst path: redelivered, the batch write fails, then 100 messages stored one by one and refreshed", async () => {
    const xm = await createMerchant({ features: { targeted_offers: false, cross_merchant: true } });
    const bodies = [];
    for (let i = 0; i < 100; i++) {
      bodies.push(await message(`cus_limit_${i}`, {
        merchant_id: xm.merchantId,
        decision: { decision_id: `dec_limit.${i}`, arm: "treatment", fallback_reason: null, rank: 1, issued_at: new Date(Date.now() - 120_000).toISOString() },
      }));
    }
    vi.spyOn(console, "error").mockImplementation(() => {});
    let batches = 0;
    // The first batch write runs every statement and then fails (rolled back), as a constraint on its last one would.
    const db = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "batch") return (statements: D1PreparedStatement[]) => (++batches === 1 ? env.DB.batch([...statements, env.DB.prepare("SELECT * FROM no_such_table")]) : env.DB.batch(statements));
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const batch = createMessageBatch(QUEUE, bodies.map((body, i) => ({ id: `limit_${i}`, timestamp: new Date(), attempts: 2, body })));
    const ctx = createExecutionContext();
    const { queries } = await countD1Queries(async () => {
      await worker.queue(batch, { ...env, DB: db }, ctx);
      await waitOnExecutionContext(ctx);
    });
    expect((await getQueueResult(batch, ctx)).explicitAcks).toHaveLength(100);
    expect(await countEvents("merchant_id = ?", xm.merchantId)).toBe(100);
    expect(queries).toBeGreaterThan(400); // the path really was the long one
    // 511 measured (903 while profiles were read with one statement set each); D1's limit is 1,000.
    expect(queries).toBeLessThanOrEqual(600);
  });
});

describe("loadProfiles", () => {
  it("reads many profiles in five statements (the fifth is their version), exactly as loadProfile reads each one", async () => {
    const a = await createMerchant({ features: { targeted_offers: false, cross_merchant: true } });
    const b = await createMerchant({ features: { targeted_offers: false, cross_merchant: true } });
    const put = (m: TestMerchant, body: object) => api(m.secretKey, "/v1/personalize/preferences", { method: "PUT", body: JSON.stringify(body) });
    expect((await put(a, { customer_id: "lp_1", cross_merchant_consent: true, default_method: "paypal", favorite_methods: ["klarna"] })).status).toBe(200);
    expect((await put(b, { customer_id: "lp_1", cross_merchant_consent: true })).status).toBe(200);
    expect((await put(a, { customer_id: "lp_3" })).status).toBe(200);
    const events = [];
    for (const [m, id, method] of [[a, "lp_1", "visa"], [b, "lp_1", "google_pay"], [b, "lp_1", "google_pay"], [a, "lp_2", "ideal"], [a, "lp_3", "klarna"]] as const) {
      events.push(await message(id, { merchant_id: m.merchantId, method_id: method, device_type: "desktop" }));
    }
    expect((await deliver(events)).result.explicitAcks).toHaveLength(events.length);
    expect((await api(a.secretKey, "/v1/personalize/customers/lp_3", { method: "DELETE" })).status).toBe(202);

    const keys: ProfileKey[] = [];
    for (const id of ["lp_1", "lp_2", "lp_3", "lp_unknown"]) {
      for (const m of [a, b]) for (const crossMerchant of [true, false]) keys.push({ merchantId: m.merchantId, customerRef: await customerRef(env.PII_KEY, id), crossMerchant });
    }
    const now = Date.now(); // one clock for both reads: a cross-merchant part is stamped with it (cross_merchant_until)
    const { result: many, queries } = await countD1Queries(() => loadProfiles(env.DB, keys, now));
    expect(queries).toBe(5);
    const each = [];
    for (const k of keys) each.push(await loadProfile(env.DB, k.merchantId, k.customerRef, k.crossMerchant, now));
    expect(many).toEqual(each);
    // The mix really covers the cases: cross-merchant counts, a pending deletion, stats, no row at all.
    expect(many[0]!.cross_merchant).toEqual([expect.objectContaining({ method_id: "google_pay", uses: 2 })]);
    expect(many[1]!.cross_merchant).toEqual([]);
    expect(many.filter((p) => p.pending_deletion)).toHaveLength(2); // lp_3 at a, read with and without cross-merchant
    expect(many.filter((p) => p.stats.length > 0).length).toBeGreaterThan(4);
    expect(many.at(-1)).toEqual({ preferences: null, stats: [], pending_deletion: false, cross_merchant: [], cross_merchant_until: null });
  });
});

describe("cross-merchant freshness", () => {
  it("a payment here reaches another consenting merchant's next /methods at once, not after its cache TTL", async () => {
    const peer = await createMerchant({ features: { targeted_offers: false, cross_merchant: true } });
    const here = await createMerchant({ features: { targeted_offers: false, cross_merchant: true } }); // contributes only with the feature on
    const customer = "cus_xm_fresh";
    for (const m of [peer, here]) {
      const res = await api(m.secretKey, "/v1/personalize/preferences", { method: "PUT", body: JSON.stringify({ customer_id: customer, cross_merchant_consent: true }) });
      expect(res.status).toBe(200);
    }
    const ask = async () => (await (await api(peer.secretKey, `/v1/personalize/methods?customer_id=${customer}`)).json()) as { personalized: boolean; fallback_reason?: string; methods: { method_id: string }[] };
    expect((await ask()).fallback_reason).toBe("no_history"); // now cached at the peer
    const bodies = await Promise.all([1, 2, 3].map(() => message(customer, { method_id: "google_pay", merchant_id: here.merchantId })));
    expect((await deliver(bodies)).result.explicitAcks.length).toBe(3);
    const after = await ask();
    expect(after.personalized).toBe(true);
    expect(after.methods[0]!.method_id).toBe("google_pay");
  });

  it("drops at most MAX_PEER_DROPS peer profiles per batch (KV allows 1,000 operations per invocation); the rest wait for their TTL", async () => {
    const xm = await createMerchant({ features: { targeted_offers: false, cross_merchant: true } });
    const customer = "cus_xm_many_peers";
    const res = await api(xm.secretKey, "/v1/personalize/preferences", { method: "PUT", body: JSON.stringify({ customer_id: customer, cross_merchant_consent: true }) });
    expect(res.status).toBe(200);
    const ref = await customerRef(env.PII_KEY, customer);
    const peers = MAX_PEER_DROPS + 150;
    await env.DB.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
       INSERT INTO preferences (merchant_id, customer_ref, cross_merchant_consent, created_at, updated_at) SELECT 'm_peer_' || i, ?2, 1, ?3, ?3 FROM n`,
    ).bind(peers, ref, new Date().toISOString()).run();
    let kvOps = 0;
    const cache = new Proxy(env.CACHE, {
      get(target, prop) {
        const value = Reflect.get(target, prop) as unknown;
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => ((kvOps += 1), (value as (...a: unknown[]) => unknown).apply(target, args));
      },
    });
    const warnings = vi.spyOn(console, "warn").mockImplementation(() => {});
    const batch = createMessageBatch(QUEUE, [{ id: "many_peers", timestamp: new Date(), attempts: 1, body: await message(customer, { merchant_id: xm.merchantId }) }]);
    const ctx = createExecutionContext();
    await worker.queue(batch, { ...env, CACHE: cache }, ctx);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toEqual(["many_peers"]);
    expect(kvOps).toBeLessThanOrEqual(MAX_PEER_DROPS + 10);
    expect(kvOps).toBeGreaterThanOrEqual(MAX_PEER_DROPS);
    expect(warnings.mock.calls.flat().join(" ")).toContain(`"skipped":150`);
  });
});

