import { createExecutionContext, createMessageBatch, createScheduledController, env, getQueueResult } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { DATA_LIFECYCLE_CRON } from "../../src/jobs/scheduled";
import { dumpText, refOf, rowsFor, seedEvent } from "../helpers/customerData";
import { api, createMerchant, type TestMerchant } from "../helpers/fixtures";

// Distinctive, so any copy of it (whole or the local part) shows up in a search.
const RAW_ID = "alice.RAW-ID:4711@example.com";
const RAW_PARTS = [RAW_ID, RAW_ID.toLowerCase(), "alice.RAW-ID:4711", encodeURIComponent(RAW_ID)];

afterEach(() => vi.restoreAllMocks());

/** POST /feedback with the queue send captured, then the captured message delivered to the worker's real consumer. */
async function feedbackThroughQueue(m: TestMerchant, body: Record<string, unknown>): Promise<unknown> {
  const send = vi.spyOn(env.FEEDBACK_QUEUE, "send").mockResolvedValue(undefined as never);
  const res = await api(m.secretKey, "/v1/personalize/feedback", { method: "POST", body: JSON.stringify(body) });
  expect(res.status).toBe(204);
  const message = send.mock.calls[0]![0];
  send.mockRestore();
  const batch = createMessageBatch("feedback-events-dev", [{ id: `msg_${Math.random()}`, timestamp: new Date(), attempts: 1, body: message }]);
  const ctx = createExecutionContext();
  await worker.queue(batch, env, ctx);
  expect((await getQueueResult(batch, ctx)).explicitAcks.length).toBe(1);
  return message;
}

async function kvDump(): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | undefined;
  do {
    const page: KVNamespaceListResult<unknown> = await env.CACHE.list(cursor ? { cursor } : {});
    for (const k of page.keys) out.push(k.name, (await env.CACHE.get(k.name)) ?? "");
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
  return out;
}

const containsRaw = (values: string[]) => values.filter((v) => RAW_PARTS.some((p) => v.includes(p)));

describe("PII at rest", () => {
  it("after the whole lifecycle through the API, no raw customer id is in D1, KV keys or values, queue messages or logs", async () => {
    const logs: string[] = [];
    for (const level of ["log", "info", "warn", "error"] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void logs.push(args.map(String).join(" ")));
    }
    const m = await createMerchant();
    const other = await createMerchant();
    const path = `/v1/personalize/customers/${encodeURIComponent(RAW_ID)}`;

    // Feedback through the route, the queue message and the consumer; preferences (and so consent) through PUT.
    const message = await feedbackThroughQueue(m, { customer_id: RAW_ID, method_id: "paypal", amount: 2500, currency: "EUR", event_id: "order_1" });
    expect(JSON.stringify(message)).not.toContain(RAW_ID);
    await feedbackThroughQueue(other, { customer_id: RAW_ID, method_id: "visa", event_id: "order_1" });
    const put = await api(m.secretKey, "/v1/personalize/preferences", {
      method: "PUT",
      body: JSON.stringify({ customer_id: RAW_ID, default_method: "paypal", cross_merchant_consent: true, personalization_enabled: true }),
    });
    expect(put.status).toBe(200);
    const q = `customer_id=${encodeURIComponent(RAW_ID)}`;
    for (const read of [`/v1/personalize/methods?${q}&country=NL`, `/v1/personalize/preferences?${q}`, `/v1/personalize/consent?${q}`]) {
      expect((await api(m.secretKey, read)).status).toBe(200);
    }
    expect(await rowsFor("consent_log", m.merchantId, RAW_ID)).toBeGreaterThan(0);
    await seedEvent(m.merchantId, RAW_ID, { method_id: "ideal" });
    expect(await rowsFor("usage_events", m.merchantId, RAW_ID)).toBe(2);

    expect((await api(m.secretKey, `${path}/export`)).status).toBe(200);
    expect((await api(m.secretKey, path, { method: "DELETE" })).status).toBe(202);
    // Feedback while the deletion is pending is accepted but not stored against the customer.
    await feedbackThroughQueue(m, { customer_id: RAW_ID, method_id: "klarna", event_id: "order_2" });
    expect(await rowsFor("usage_events", m.merchantId, RAW_ID)).toBe(2);
    expect((await api(m.secretKey, `${path}/restore`, { method: "POST" })).status).toBe(200);
    const { purge_after } = await (await api(m.secretKey, path, { method: "DELETE" })).json<{ purge_after: string }>();

    // Failures before the handler (no key, unknown method) log the request too.
    expect((await api(null, path, { method: "DELETE" })).status).toBe(401);
    expect((await api(m.secretKey, path, { method: "PUT" })).status).toBe(405);

    const ref = await refOf(RAW_ID);
    const before = await dumpText();
    expect(before).toContain(ref); // the dump does see this customer's rows (by pseudonym)
    expect(containsRaw(before)).toEqual([]);

    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ scheduledTime: Date.parse(purge_after), cron: DATA_LIFECYCLE_CRON }), env, ctx);
    expect(await rowsFor("usage_events", m.merchantId, RAW_ID)).toBe(0);
    expect(await rowsFor("usage_events", other.merchantId, RAW_ID)).toBe(1);

    expect(containsRaw(await dumpText())).toEqual([]);
    const kv = await kvDump();
    expect(kv.some((k) => k.includes(ref))).toBe(true); // the other merchant's cached profile, keyed by pseudonym
    expect(containsRaw(kv)).toEqual([]);
    expect(logs.length).toBeGreaterThan(5);
    expect(logs.some((l) => l.includes(ref))).toBe(true); // request lines carry the pseudonym instead
    expect(containsRaw(logs)).toEqual([]);
  });

  it("a customer path no route takes (doubled slash, trailing slash) is logged without the id, as an unmatched endpoint", async () => {
    const m = await createMerchant();
    const id = encodeURIComponent(RAW_ID);
    const lines: Record<string, unknown>[] = [];
    for (const level of ["log", "info", "warn", "error"] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void lines.push(JSON.parse(args.map(String).join(" ")) as Record<string, unknown>));
    }
    const statuses = [
      (await api(m.secretKey, `/v1/personalize/customers/${id}/export`)).status,
      (await api(m.secretKey, `//v1/personalize/customers/${id}/export`)).status,
      (await api(m.secretKey, `/v1/personalize/customers/${id}/export/`)).status,
      (await api(m.secretKey, `/v1/personalize//customers/${id}`, { method: "DELETE" })).status,
    ];
    vi.restoreAllMocks();
    expect(statuses).toEqual([200, 404, 404, 404]);
    expect(containsRaw(lines.map((l) => JSON.stringify(l)))).toEqual([]);
    expect(lines.filter((l) => "status_code" in l).map((l) => l.endpoint)).toEqual([
      "/v1/personalize/customers/{customer_id}/export",
      "(unmatched) /v1/personalize/customers/*/export",
      "(unmatched) /v1/personalize/customers/*/export",
      "(unmatched) /v1/personalize/customers/*",
    ]);
  });

  it("the pseudonym is keyed: another PII_KEY gives another ref, and it is not a plain hash of the id", async () => {
    const { customerRef } = await import("../../src/crypto/pseudonym");
    const { sha256Hex } = await import("../../src/crypto/hash");
    const ref = await customerRef(env.PII_KEY, RAW_ID);
    expect(ref).toMatch(/^c_[A-Za-z0-9_-]{43}$/);
    expect(await customerRef("another-key-0123456789abcdef0123456789", RAW_ID)).not.toBe(ref);
    expect(ref).not.toContain(await sha256Hex(RAW_ID));
  });

  it("the memo never answers one key's ref for another key that shares its length and first characters", async () => {
    const { customerRef } = await import("../../src/crypto/pseudonym");
    const first = await customerRef("rotation-key-0123456789abcdef-A", RAW_ID);
    const second = await customerRef("rotation-key-0123456789abcdef-B", RAW_ID);
    expect(second).not.toBe(first);
    expect(await customerRef("rotation-key-0123456789abcdef-A", RAW_ID)).toBe(first);
  });
});
