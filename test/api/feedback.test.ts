import { env } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { toHex } from "../../src/crypto/encoding";
import { hmacSha256, sha256Hex } from "../../src/crypto/hash";
import { customerRef } from "../../src/crypto/pseudonym";
import { CATALOG } from "../../src/catalog/methods";
import { contentFingerprint } from "../../src/fingerprint";
import { signDecision } from "../../src/personalization/decision";
import type { FeedbackMessage } from "../../src/schemas/feedback";
import { type Profile, profileKey } from "../../src/storage/profile";
import { api, createMerchant, expectError, type TestMerchant } from "../helpers/fixtures";

const FEEDBACK = "/v1/personalize/feedback";
const BATCH = "/v1/personalize/feedback/batch";

let shop: TestMerchant;
let other: TestMerchant;

beforeAll(async () => {
  shop = await createMerchant({ methods: ["visa", "apple_pay", "paypal", "klarna"] });
  other = await createMerchant();
});

afterEach(() => vi.restoreAllMocks());

const post = (path: string, body: unknown, headers: Record<string, string> = {}, key = shop.secretKey) =>
  api(key, path, { method: "POST", body: JSON.stringify(body), headers });

const iso = (offsetMs: number) => new Date(Date.now() + offsetMs).toISOString();

/** Polls D1 until the consumer (real local queue, max_batch_timeout 1 s) has stored the rows. */
async function waitForRows(merchantId: string, count: number, timeoutMs = 10_000): Promise<{ event_id: string; method_id: string; customer_ref: string }[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { results } = await env.DB.prepare("SELECT event_id, method_id, customer_ref FROM usage_events WHERE merchant_id = ? ORDER BY id")
      .bind(merchantId)
      .all<{ event_id: string; method_id: string; customer_ref: string }>();
    if (results.length >= count || Date.now() > deadline) return results;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function decisionFor(merchantId: string, ranked: string[], signingKey = env.SIGNING_KEY) {
  return signDecision(signingKey, { m: merchantId, a: "treatment", f: null, r: ranked, t: Date.now() - 60_000 });
}

describe("POST /v1/personalize/feedback", () => {
  it("answers 204 and the consumer stores the event under the pseudonym, never the raw id", async () => {
    const m = await createMerchant();
    const res = await post(FEEDBACK, { customer_id: "cus_e2e", method_id: "paypal", amount: 4999, currency: "USD", event_id: "order_1" }, {}, m.secretKey);
    expect(res.status).toBe(204);
    expect(await res.text()).toBe("");
    const rows = await waitForRows(m.merchantId, 1);
    expect(rows).toEqual([{ event_id: "order_1", method_id: "paypal", customer_ref: await customerRef(env.PII_KEY, "cus_e2e") }]);
  });

  it("takes the Idempotency-Key header as the event id; the same key sent 3× is stored once", async () => {
    const m = await createMerchant();
    for (let i = 0; i < 3; i++) {
      const res = await post(FEEDBACK, { customer_id: "cus_idem", method_id: "visa" }, { "Idempotency-Key": "pay-777" }, m.secretKey);
      expect(res.status).toBe(204);
    }
    await post(FEEDBACK, { customer_id: "cus_idem", method_id: "visa", event_id: "marker" }, {}, m.secretKey);
    const rows = await waitForRows(m.merchantId, 2);
    expect(rows.map((r) => r.event_id).sort()).toEqual(["marker", "pay-777"]);
    const stats = await env.DB.prepare("SELECT uses FROM method_stats WHERE merchant_id = ? AND bucket = '*' AND method_id = 'visa'").bind(m.merchantId).first<{ uses: number }>();
    expect(stats?.uses).toBe(2);
  });

  it("end to end: feedback reaches the aggregates and the cached profile within seconds", async () => {
    // GET /v1/personalize/methods is built in another issue; this asserts what it reads (D1 + KV profile).
    const m = await createMerchant();
    const ref = await customerRef(env.PII_KEY, "cus_flow");
    await env.CACHE.put(profileKey(m.merchantId, ref), JSON.stringify({ preferences: null, stats: [], pending_deletion: false, cross_merchant: [] }));
    const events = [0, 1, 2].map((i) => ({ customer_id: "cus_flow", method_id: "klarna", event_id: `flow_${i}`, device_type: "mobile" }));
    expect((await post(BATCH, { events }, {}, m.secretKey)).status).toBe(202);
    await waitForRows(m.merchantId, 3);
    let profile: Profile | null = null;
    for (let i = 0; i < 25 && !profile?.stats.length; i++) {
      await new Promise((r) => setTimeout(r, 200));
      profile = await env.CACHE.get<Profile>(profileKey(m.merchantId, ref), "json");
    }
    expect(profile?.stats.find((s) => s.bucket === "*" && s.method_id === "klarna")?.uses).toBe(3);
    expect(profile?.stats.find((s) => s.bucket === "device:mobile" && s.method_id === "klarna")?.uses).toBe(3);
  });

  it("end to end: feedback changes the order GET /v1/personalize/methods returns", async () => {
    const m = await createMerchant({ methods: ["visa", "mastercard", "paypal"] });
    const methodsPath = "/v1/personalize/methods?customer_id=cus_order&country=US&currency=USD&device_type=desktop";
    const order = async () => ((await (await api(m.secretKey, methodsPath)).json()) as { methods: { method_id: string }[] }).methods.map((x) => x.method_id);
    const before = await order(); // also fills the profile cache, which the consumer must refresh
    expect(before[0]).toBe("visa");
    const events = [0, 1, 2, 3].map((i) => ({ customer_id: "cus_order", method_id: "paypal", event_id: `ord_${i}`, device_type: "desktop", location_country: "US" }));
    expect((await post(BATCH, { events }, {}, m.secretKey)).status).toBe(202);
    let after = before;
    for (let i = 0; i < 50 && after[0] !== "paypal"; i++) {
      await new Promise((r) => setTimeout(r, 200));
      after = await order();
    }
    expect(after[0]).toBe("paypal");
    expect([...after].sort()).toEqual([...before].sort());
  });

  it("assigns an event id when none is given", async () => {
    const m = await createMerchant();
    expect((await post(FEEDBACK, { customer_id: "cus_noid", method_id: "visa" }, {}, m.secretKey)).status).toBe(204);
    const [row] = await waitForRows(m.merchantId, 1);
    expect(row?.event_id).toMatch(/^evt_[A-Za-z0-9_-]{22}$/);
  });

  it("rejects an event_id that differs from the Idempotency-Key header", async () => {
    const body = await expectError(await post(FEEDBACK, { customer_id: "c1", method_id: "visa", event_id: "a" }, { "Idempotency-Key": "b" }), 400, "VALIDATION_ERROR");
    expect(body.error.details).toEqual([{ path: "event_id", message: "differs from the Idempotency-Key header" }]);
  });

  it("queues a versioned message with the pseudonym and the verified decision claims, never the raw customer id", async () => {
    const decision_id = await decisionFor(shop.merchantId, ["apple_pay", "visa"]);
    const send = vi.spyOn(env.FEEDBACK_QUEUE, "send"); // calls through to the real queue
    const res = await post(FEEDBACK, { customer_id: "cus_secret_42", method_id: "visa", decision_id, amount: 100, currency: "EUR", event_id: "dec_evt" });
    expect(res.status).toBe(204);
    const body = send.mock.calls[0]![0] as Record<string, unknown>;
    expect(JSON.stringify(body)).not.toContain("cus_secret_42");
    expect(body).toMatchObject({
      v: 1,
      merchant_id: shop.merchantId,
      customer_ref: await customerRef(env.PII_KEY, "cus_secret_42"),
      event_id: "dec_evt",
      method_id: "visa",
      amount: 100,
      currency: "EUR",
      decision: { decision_id, arm: "treatment", fallback_reason: null, rank: 2 },
    });
    expect(body.received_at).toBe(body.occurred_at);
  });

  it("accepts any event_id of 1–128 characters, as merchants' order ids come (#, /, spaces)", async () => {
    for (const event_id of ["order #1001", "2026/11/25 A-7", "Bestellung Nr. 5 — Müller"]) {
      const res = await post(FEEDBACK, { customer_id: "c1", method_id: "visa", event_id });
      expect(res.status, event_id).toBe(204);
    }
    expect((await post(FEEDBACK, { customer_id: "c1", method_id: "visa" }, { "Idempotency-Key": "order #1002" })).status).toBe(204);
  });

  const cases: [string, Record<string, unknown>, Record<string, string>, string][] = [
    ["missing customer_id", { method_id: "visa" }, {}, "customer_id"],
    ["malformed customer_id", { customer_id: "bad id!", method_id: "visa" }, {}, "customer_id"],
    ["missing method_id", { customer_id: "c1" }, {}, "method_id"],
    ["malformed method_id", { customer_id: "c1", method_id: "Apple Pay" }, {}, "method_id"],
    ["method not enabled for the merchant", { customer_id: "c1", method_id: "ideal" }, {}, "method_id"],
    ["unknown field", { customer_id: "c1", method_id: "visa", methd: "x" }, {}, "methd"],
    ["negative amount", { customer_id: "c1", method_id: "visa", amount: -1 }, {}, "amount"],
    ["fractional amount", { customer_id: "c1", method_id: "visa", amount: 1.5 }, {}, "amount"],
    ["lower-case currency", { customer_id: "c1", method_id: "visa", currency: "usd" }, {}, "currency"],
    ["unknown device_type", { customer_id: "c1", method_id: "visa", device_type: "watch" }, {}, "device_type"],
    ["bad location_country", { customer_id: "c1", method_id: "visa", location_country: "USA" }, {}, "location_country"],
    ["bad offer_id", { customer_id: "c1", method_id: "visa", offer_id: "5% off" }, {}, "offer_id"],
    ["empty event_id", { customer_id: "c1", method_id: "visa", event_id: "" }, {}, "event_id"],
    ["event_id of 129 chars", { customer_id: "c1", method_id: "visa", event_id: "e".repeat(129) }, {}, "event_id"],
    // A lone surrogate is no character: D1 reads it back as U+FFFD, so "b\uD800" and "b\uDBFF" would export alike.
    ["event_id with a lone surrogate", { customer_id: "c1", method_id: "visa", event_id: "b\uD800" }, {}, "event_id"],
    ["Idempotency-Key header of 129 chars", { customer_id: "c1", method_id: "visa" }, { "Idempotency-Key": "k".repeat(129) }, "idempotency-key"],
    ["occurred_at not UTC", { customer_id: "c1", method_id: "visa", occurred_at: "2026-02-03T15:30:00+01:00" }, {}, "occurred_at"],
    ["occurred_at 10 minutes ahead", { customer_id: "c1", method_id: "visa", occurred_at: iso(10 * 60_000) }, {}, "occurred_at"],
    ["occurred_at 91 days ago", { customer_id: "c1", method_id: "visa", occurred_at: iso(-91 * 86_400_000) }, {}, "occurred_at"],
    ["garbled decision_id", { customer_id: "c1", method_id: "visa", decision_id: "dec_garbage" }, {}, "decision_id"],
  ];
  for (const [name, body, headers, path] of cases) {
    it(`400 VALIDATION_ERROR: ${name}`, async () => {
      const err = await expectError(await post(FEEDBACK, body, headers), 400, "VALIDATION_ERROR");
      expect(err.error.details?.map((d) => d.path)).toContain(path);
    });
  }

  it("400 for an occurred_at on a day that does not exist, instead of storing the day it rolls over to", async () => {
    const err = await expectError(await post(FEEDBACK, { customer_id: "c1", method_id: "visa", occurred_at: "2026-11-31T10:00:00Z" }), 400, "VALIDATION_ERROR");
    expect(err.error.details).toContainEqual({ path: "occurred_at", message: "is not a valid date" });
  });

  it("400 naming the leap second for an occurred_at at 23:59:60, which JavaScript dates cannot hold", async () => {
    const leap = new Date(Date.now() - 86_400_000).toISOString().slice(0, 11) + "23:59:60Z";
    const err = await expectError(await post(FEEDBACK, { customer_id: "c1", method_id: "visa", occurred_at: leap }), 400, "VALIDATION_ERROR");
    expect(err.error.details).toEqual([{ path: "occurred_at", message: "has second 60: leap seconds are not accepted (send :59 of that minute)" }]);
  });

  it("accepts occurred_at with up to 9 fraction digits (Java, .NET and Go write 6, 7 and 9) and stores the millisecond", async () => {
    const m = await createMerchant();
    const ms = new Date(Date.now() - 60_000).toISOString(); // …T12:34:56.789Z
    const forms = [ms.replace("Z", "123Z"), ms.replace("Z", "1234Z"), ms.replace("Z", "123456Z")];
    for (const [i, occurred_at] of forms.entries()) {
      expect((await post(FEEDBACK, { customer_id: "c_digits", method_id: "visa", event_id: `digits_${i}`, occurred_at }, {}, m.secretKey)).status).toBe(204);
    }
    await waitForRows(m.merchantId, 3);
    const stored = await env.DB.prepare("SELECT DISTINCT occurred_at FROM usage_events WHERE merchant_id = ?").bind(m.merchantId).all<{ occurred_at: string }>();
    expect(stored.results).toEqual([{ occurred_at: ms }]);
    const err = await expectError(await post(FEEDBACK, { customer_id: "c1", method_id: "visa", occurred_at: ms.replace("Z", "1234567Z") }), 400, "VALIDATION_ERROR");
    expect(err.error.details?.map((d) => d.path)).toEqual(["occurred_at"]);
  });

  it("accepts occurred_at 4 minutes ahead and 89 days ago", async () => {
    expect((await post(FEEDBACK, { customer_id: "c1", method_id: "visa", occurred_at: iso(4 * 60_000) })).status).toBe(204);
    expect((await post(FEEDBACK, { customer_id: "c1", method_id: "visa", occurred_at: iso(-89 * 86_400_000) })).status).toBe(204);
  });

  it("ties a decision to the customer it was for: another customer cannot claim it; a guest's can convert for anyone", async () => {
    const answer = async (key: string, query: string) => ((await (await api(key, `/v1/personalize/methods?${query}`, { headers: { Origin: "https://shop.example" } })).json()) as { decision_id: string }).decision_id;
    const forAlice = await answer(shop.secretKey, "customer_id=cus_tag_alice");
    const err = await expectError(await post(FEEDBACK, { customer_id: "cus_tag_bob", method_id: "visa", decision_id: forAlice }), 400, "VALIDATION_ERROR");
    expect(err.error.details).toEqual([{ path: "decision_id", message: "was issued for another customer" }]);
    const batch = await expectError(await post(BATCH, { events: [{ customer_id: "cus_tag_alice", method_id: "visa" }, { customer_id: "cus_tag_bob", method_id: "visa", decision_id: forAlice }] }), 400, "VALIDATION_ERROR");
    expect(batch.error.details!.map((d) => d.path)).toEqual(["events.1.decision_id"]);
    expect((await post(FEEDBACK, { customer_id: "cus_tag_alice", method_id: "visa", decision_id: forAlice })).status).toBe(204);
    const guest = await answer(shop.publishableKey, "country=US");
    expect((await post(FEEDBACK, { customer_id: "cus_tag_bob", method_id: "visa", decision_id: guest })).status).toBe(204);
  });

  it("400 for a forged decision_id and for another merchant's", async () => {
    const forged = await decisionFor(shop.merchantId, ["visa"], "not-the-signing-key");
    const foreign = await decisionFor(other.merchantId, ["visa"]);
    for (const decision_id of [forged, foreign]) {
      const err = await expectError(await post(FEEDBACK, { customer_id: "c1", method_id: "visa", decision_id }), 400, "VALIDATION_ERROR");
      expect(err.error.details).toEqual([{ path: "decision_id", message: "is not a decision id issued to this merchant" }]);
    }
  });

  it("rejects an unknown query parameter", async () => {
    const err = await expectError(await post(`${FEEDBACK}?foo=1`, { customer_id: "c1", method_id: "visa" }), 400, "VALIDATION_ERROR");
    expect(err.error.details?.map((d) => d.path)).toContain("foo");
  });

  it("403 for another merchant's merchant_id and for a publishable key", async () => {
    await expectError(await post(FEEDBACK, { customer_id: "c1", method_id: "visa", merchant_id: other.merchantId }), 403, "MERCHANT_MISMATCH");
    await expectError(await post(FEEDBACK, { customer_id: "c1", method_id: "visa" }, {}, shop.publishableKey), 403, "KEY_NOT_ALLOWED");
  });

  it("503 UNAVAILABLE when the queue refuses the event, never a silent 204", async () => {
    // The real binding, made to fail for this one call: Miniflare's local queue cannot be taken down.
    const send = vi.spyOn(env.FEEDBACK_QUEUE, "send").mockRejectedValueOnce(new Error("Queue send failed: 503"));
    await expectError(await post(FEEDBACK, { customer_id: "c1", method_id: "visa" }), 503, "UNAVAILABLE");
    expect(send).toHaveBeenCalledTimes(1);
  });
});

describe("POST /v1/personalize/feedback/batch", () => {
  const event = (i: number, extra: Record<string, unknown> = {}) => ({ customer_id: `cus_b${i % 7}`, method_id: "visa", event_id: `b_${i}`, ...extra });

  it("202 {accepted: n} and every event is stored", async () => {
    const m = await createMerchant();
    const events = Array.from({ length: 100 }, (_, i) => event(i));
    const res = await post(BATCH, { events }, {}, m.secretKey);
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ accepted: 100 });
    expect((await waitForRows(m.merchantId, 100)).length).toBe(100);
  });

  it("100 events with UUID customer and order ids, an offer_id and the decision_id /methods issued fit the 64 KiB body: 202", async () => {
    // Every catalog method enabled: a DE/EUR desktop answer then ranks 14, the longest real answer.
    const m = await createMerchant({ methods: CATALOG.map((x) => x.id) });
    const events = [];
    for (let i = 0; i < 100; i++) {
      const customer_id = crypto.randomUUID();
      const res = await api(m.secretKey, `/v1/personalize/methods?customer_id=${customer_id}&device_type=desktop&country=DE&amount=4999&currency=EUR`);
      const body = (await res.json()) as { decision_id: string; methods: { method_id: string }[] };
      expect(body.methods).toHaveLength(14);
      events.push({
        customer_id, method_id: body.methods[1]!.method_id, amount: 4999, currency: "EUR", device_type: "desktop", location_country: "DE",
        event_id: `order_${crypto.randomUUID()}`, offer_id: "applepay_5off", decision_id: body.decision_id, occurred_at: new Date().toISOString(),
      });
    }
    const sendBatch = vi.spyOn(env.FEEDBACK_QUEUE, "sendBatch");
    const res = await post(BATCH, { events }, {}, m.secretKey);
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ accepted: 100 });
    // Each event is attributed to its decision: the method it paid with was ranked second there.
    expect([...sendBatch.mock.calls[0]![0]].map((q) => (q.body as FeedbackMessage).decision?.rank)).toEqual(Array(100).fill(2));
  });

  it("accepted counts distinct events: an event_id repeated with the same content is one event, queued once", async () => {
    const m = await createMerchant();
    const at = new Date(Date.now() - 60_000);
    at.setUTCMilliseconds(0);
    const events = [
      event(0, { occurred_at: at.toISOString().replace(".000Z", "Z") }),
      event(1),
      // The same instant written another way, and merchant_id spelled out: the same stored event.
      event(0, { occurred_at: at.toISOString(), merchant_id: m.merchantId }),
      event(1),
      // No event_id: each gets its own id, so identical bodies are distinct events.
      { customer_id: "cus_anon", method_id: "visa" },
      { customer_id: "cus_anon", method_id: "visa" },
    ];
    const sendBatch = vi.spyOn(env.FEEDBACK_QUEUE, "sendBatch");
    const res = await post(BATCH, { events }, {}, m.secretKey);
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ accepted: 4 });
    expect(sendBatch.mock.calls[0]?.[0]).toHaveLength(4);
    const rows = await waitForRows(m.merchantId, 4);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await waitForRows(m.merchantId, 99, 0)).length).toBe(4);
    expect(rows.filter((r) => r.event_id.startsWith("b_")).map((r) => r.event_id).sort()).toEqual(["b_0", "b_1"]);
  });

  it("with Idempotency-Key, events without event_id get per-index ids and all count", async () => {
    const m = await createMerchant();
    const same = { customer_id: "cus_anon", method_id: "visa" };
    const res = await post(BATCH, { events: [same, same, same] }, { "Idempotency-Key": "batch-dup" }, m.secretKey);
    expect(await res.json()).toEqual({ accepted: 3 });
    expect((await waitForRows(m.merchantId, 3)).length).toBe(3);
  });

  it("400 naming events.N.event_id when an event_id repeats with different content; nothing is queued", async () => {
    const m = await createMerchant();
    const sendBatch = vi.spyOn(env.FEEDBACK_QUEUE, "sendBatch");
    const events = [event(0), event(1), event(0, { method_id: "paypal" }), event(3), event(1, { amount: 100 })];
    const err = await expectError(await post(BATCH, { events }, {}, m.secretKey), 400, "VALIDATION_ERROR");
    expect(err.error.details).toEqual([
      { path: "events.2.event_id", message: "repeats the event_id of events.0 with different content" },
      { path: "events.4.event_id", message: "repeats the event_id of events.1 with different content" },
    ]);
    expect(sendBatch).not.toHaveBeenCalled();
    // Reported together with the other merchant checks, in index order.
    const mixed = await expectError(await post(BATCH, { events: [event(0), event(0, { amount: 1 }), event(2, { method_id: "sofort" })] }, {}, m.secretKey), 400, "VALIDATION_ERROR");
    expect(mixed.error.details?.map((d) => d.path)).toEqual(["events.1.event_id", "events.2.method_id"]);
  });

  it("one invalid event rejects the batch, details naming its index", async () => {
    const m = await createMerchant();
    const events = Array.from({ length: 5 }, (_, i) => event(i));
    events[3] = event(3, { method_id: "sofort" });
    const err = await expectError(await post(BATCH, { events }, {}, m.secretKey), 400, "VALIDATION_ERROR");
    expect(err.error.details?.[0]?.path).toBe("events.3.method_id");
    await new Promise((r) => setTimeout(r, 1500));
    expect(await waitForRows(m.merchantId, 1, 0)).toEqual([]);
  });

  it("names the index of format, unknown-field, occurred_at and decision_id errors", async () => {
    const foreign = await decisionFor(other.merchantId, ["visa"]);
    const events = [
      event(0, { amount: "12" }),
      event(1, { colour: "red" }),
      event(2, { occurred_at: iso(3_600_000) }),
      event(3),
      event(4, { decision_id: foreign }),
    ];
    const err = await expectError(await post(BATCH, { events }), 400, "VALIDATION_ERROR");
    expect(err.error.details?.map((d) => d.path)).toEqual(["events.0.amount", "events.1.colour", "events.2.occurred_at"]);
    // Schema errors come first; the merchant checks (method, decision_id) run on schema-valid bodies.
    const err2 = await expectError(await post(BATCH, { events: [event(0), event(1, { decision_id: foreign })] }), 400, "VALIDATION_ERROR");
    expect(err2.error.details?.map((d) => d.path)).toEqual(["events.1.decision_id"]);
  });

  it("400 for more than 100 events, for none, and for a missing events field", async () => {
    const tooMany = await expectError(await post(BATCH, { events: Array.from({ length: 101 }, (_, i) => event(i)) }), 400, "VALIDATION_ERROR");
    expect(tooMany.error.details?.[0]?.path).toBe("events");
    await expectError(await post(BATCH, { events: [] }), 400, "VALIDATION_ERROR");
    const missing = await expectError(await post(BATCH, {}), 400, "VALIDATION_ERROR");
    expect(missing.error.details?.[0]?.path).toBe("events");
  });

  it("403 when one event names another merchant", async () => {
    await expectError(await post(BATCH, { events: [event(0), event(1, { merchant_id: other.merchantId })] }), 403, "MERCHANT_MISMATCH");
  });

  it("the batch body may name merchant_id beside events, as every merchant route's body may (API.md §1): its own 202, another 403", async () => {
    const res = await post(BATCH, { merchant_id: shop.merchantId, events: [event(0)] });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ accepted: 1 });
    await expectError(await post(BATCH, { merchant_id: other.merchantId, events: [event(0)] }), 403, "MERCHANT_MISMATCH");
  });

  it("derives stable event ids from Idempotency-Key: a retried batch is stored once", async () => {
    const m = await createMerchant();
    const events = [{ customer_id: "c1", method_id: "visa" }, { customer_id: "c2", method_id: "paypal" }];
    for (let i = 0; i < 2; i++) expect((await post(BATCH, { events }, { "Idempotency-Key": "batch-42" }, m.secretKey)).status).toBe(202);
    await post(FEEDBACK, { customer_id: "c3", method_id: "visa", event_id: "marker" }, {}, m.secretKey);
    const rows = await waitForRows(m.merchantId, 3);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await waitForRows(m.merchantId, 99, 0)).length).toBe(3);
    expect(rows.filter((r) => r.event_id.startsWith("idk_")).length).toBe(2);
  });

  it("Idempotency-Key reused with another batch loses no event and stores none twice; a reordered retry is the same batch", async () => {
    const m = await createMerchant();
    const A = { customer_id: "c_a", method_id: "visa", amount: 1000 };
    const B = { customer_id: "c_b", method_id: "paypal", amount: 2000 };
    const C = { customer_id: "c_c", method_id: "visa", amount: 3000 };
    for (const events of [[A, B], [C, A, B], [B, A], [{ ...A, occurred_at: undefined }, B]]) {
      expect((await post(BATCH, { events }, { "Idempotency-Key": "batch-reused" }, m.secretKey)).status).toBe(202);
    }
    const rows = await waitForRows(m.merchantId, 3);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await waitForRows(m.merchantId, 99, 0)).length).toBe(3);
    const stored = await env.DB.prepare("SELECT amount FROM usage_events WHERE merchant_id = ? ORDER BY amount").bind(m.merchantId).all<{ amount: number }>();
    expect(stored.results.map((r) => r.amount)).toEqual([1000, 2000, 3000]);
    expect(rows.every((r) => r.event_id.startsWith("idk_"))).toBe(true);
  });

  it("an id derived from the Idempotency-Key is keyed (HMAC under PII_KEY): the raw customer id in the content cannot be recomputed from it", async () => {
    const m = await createMerchant();
    const send = vi.spyOn(env.FEEDBACK_QUEUE, "send").mockResolvedValue(undefined as never); // one event: send, not sendBatch
    const ev = { customer_id: "alice@example.com", method_id: "visa", amount: 2500, currency: "EUR" };
    expect((await post(BATCH, { events: [ev] }, { "Idempotency-Key": "order_1" }, m.secretKey)).status).toBe(202);
    const sent = (send.mock.calls[0]![0] as FeedbackMessage).event_id;
    const fingerprint = contentFingerprint(ev);
    const unkeyed = "idk_" + (await sha256Hex(`order_1\n0\n${fingerprint}`)).slice(0, 32);
    const keyed = "idk_" + toHex(await hmacSha256(env.PII_KEY, `feedback-batch-event:order_1\n0\n${fingerprint}`)).slice(0, 32);
    expect(sent).not.toBe(unkeyed);
    expect(sent).toBe(keyed);
    expect(sent).not.toContain("alice");
  });

  it("both routes are documented in the OpenAPI document", async () => {
    const res = await api(null, "/v1/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { paths: Record<string, { post?: { responses: Record<string, unknown> } }> };
    expect(Object.keys(doc.paths[FEEDBACK]?.post?.responses ?? {})).toContain("204");
    expect(Object.keys(doc.paths[BATCH]?.post?.responses ?? {})).toContain("202");
  });

  it("503 UNAVAILABLE when the queue refuses the batch", async () => {
    vi.spyOn(env.FEEDBACK_QUEUE, "sendBatch").mockRejectedValueOnce(new Error("Queue sendBatch failed"));
    await expectError(await post(BATCH, { events: [event(0), event(1)] }), 503, "UNAVAILABLE");
  });
});
