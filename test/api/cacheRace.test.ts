import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { customerRef } from "../../src/crypto/pseudonym";
import worker from "../../src/index";
import { KV_REWRITE_WAIT_MS, loadSnapshots, type ProfileKey, profileKey, readProfile, writeChecked } from "../../src/storage/profile";
import { api, createMerchant, type TestMerchant } from "../helpers/fixtures";
import { countD1Queries } from "../helpers/queryCount";
import { recordPayments, repeat } from "../helpers/usage";

/**
 * KV has no conditional write. A writer that read D1 just before a change and writes KV just after the
 * change's own refresh (a /methods miss racing a PUT /preferences or a deletion, a feedback refresh
 * racing either) would otherwise leave the old profile cached for its 300 s TTL. These tests replay
 * the race step by step: the snapshot is taken first, the change lands, then the late write.
 */
interface MethodsBody {
  methods: { method_id: string }[];
  personalized: boolean;
  fallback_reason: string | null;
}

let m: TestMerchant;
afterEach(() => vi.restoreAllMocks());
beforeAll(async () => {
  m = await createMerchant({ holdout_percent: 0 }); // every customer personalized
});

const put = (id: string, body: object) => api(m.secretKey, "/v1/personalize/preferences", { method: "PUT", body: JSON.stringify({ customer_id: id, ...body }) });
const methods = async (id: string): Promise<MethodsBody> => {
  const res = await api(m.secretKey, `/v1/personalize/methods?customer_id=${id}&device_type=desktop&country=DE&currency=EUR`);
  expect(res.status).toBe(200);
  return res.json<MethodsBody>();
};
const shown = async (id: string) => (await methods(id)).methods.map((x) => x.method_id);
const keyOf = async (id: string): Promise<ProfileKey> => ({ merchantId: m.merchantId, customerRef: await customerRef(env.PII_KEY, id), crossMerchant: false });
const kvKey = (k: ProfileKey) => profileKey(k.merchantId, k.customerRef);

describe("a cache write that lost a race with a change", () => {
  it("a late write of the profile read before a PUT /preferences does not survive it: the next /methods shows the change", async () => {
    const id = "race_put";
    expect((await put(id, { favorite_methods: ["klarna"] })).status).toBe(200);
    const k = await keyOf(id);
    const before = await loadSnapshots(env.DB, [k], Date.now()); // the /methods miss reads D1 …
    expect((await put(id, { excluded_methods: ["paypal"] })).status).toBe(200); // … the PUT commits and refreshes …
    expect(await shown(id)).not.toContain("paypal");

    // The race is real: written without the check, the old snapshot is what /methods answers from.
    await env.CACHE.put(kvKey(k), JSON.stringify(before.profiles[0]), { expirationTtl: 300 });
    expect(await shown(id)).toContain("paypal");

    expect((await put(id, { excluded_methods: ["paypal"] })).status).toBe(200);
    const result = await writeChecked(env, [k], before); // … and the miss's write lands last.
    expect(result).toEqual({ unwritten: [], error: null });
    expect(await env.CACHE.get(kvKey(k))).toBeNull(); // dropped: the next read fills from D1
    expect(await shown(id)).not.toContain("paypal");
  });

  it("a late write of the profile read before a deletion does not bring the customer back", async () => {
    const id = "race_delete";
    expect((await put(id, { default_method: "paypal" })).status).toBe(200);
    const k = await keyOf(id);
    const before = await loadSnapshots(env.DB, [k], Date.now());
    expect((await api(m.secretKey, `/v1/personalize/customers/${id}`, { method: "DELETE" })).status).toBe(202);
    expect(await writeChecked(env, [k], before)).toEqual({ unwritten: [], error: null });
    expect(await env.CACHE.get(kvKey(k))).toBeNull();
    const answer = await methods(id);
    expect(answer).toMatchObject({ personalized: false, fallback_reason: "customer_deleted" });
  });

  it("a late write of the profile read before a payment was counted does not hide the payment", async () => {
    const id = "race_feedback";
    const k = await keyOf(id);
    const before = await loadSnapshots(env.DB, [k], Date.now()); // no history yet
    // The feedback consumer's insert, as its trigger-fed aggregates record it.
    await env.DB.prepare(
      "INSERT INTO method_stats (merchant_id, customer_ref, bucket, method_id, weight_ref, uses, last_used_at) VALUES (?, ?, '*', 'klarna', 1, 1, ?)",
    )
      .bind(k.merchantId, k.customerRef, new Date().toISOString())
      .run();
    const after = await loadSnapshots(env.DB, [k], Date.now());
    expect(after.versions[0]).not.toBe(before.versions[0]);
    await writeChecked(env, [k], before);
    expect(await env.CACHE.get(kvKey(k))).toBeNull();
  });

  it("without a change in between the entry stays, and the next /methods is a hit with no D1 query", async () => {
    const id = "race_none";
    expect((await put(id, { excluded_methods: ["visa"] })).status).toBe(200);
    const k = await keyOf(id);
    await env.CACHE.delete(kvKey(k));
    const snapshot = await loadSnapshots(env.DB, [k], Date.now());
    expect(await writeChecked(env, [k], snapshot)).toEqual({ unwritten: [], error: null });
    expect(JSON.parse((await env.CACHE.get(kvKey(k)))!)).toEqual(snapshot.profiles[0]);
    const { result, queries } = await countD1Queries(() => shown(id));
    expect(result).not.toContain("visa");
    expect(result.length).toBeGreaterThan(3);
    expect(queries).toBe(0);
  });

  it("checks many keys with one D1 query and drops only the changed ones", async () => {
    const ids = ["race_many_0", "race_many_1", "race_many_2"];
    for (const id of ids) expect((await put(id, { default_method: "paypal" })).status).toBe(200);
    const keys = await Promise.all(ids.map(keyOf));
    const before = await loadSnapshots(env.DB, keys, Date.now());
    expect((await put("race_many_1", { default_method: "klarna" })).status).toBe(200);
    const { result, queries } = await countD1Queries(() => writeChecked(env, keys, before));
    expect(result.unwritten).toEqual([]);
    expect(queries).toBe(1);
    const cached = await Promise.all(keys.map((k) => env.CACHE.get(kvKey(k))));
    expect(cached.map((c) => c !== null)).toEqual([true, false, true]);
  });

  it("KV refusing the drop (one write per key per second) is retried, and a key it keeps refusing is reported, not ignored", async () => {
    const ids = ["race_refused_0", "race_refused_1"];
    for (const id of ids) expect((await put(id, { favorite_methods: ["klarna"] })).status).toBe(200);
    const keys = await Promise.all(ids.map(keyOf));
    const before = await loadSnapshots(env.DB, keys, Date.now());
    for (const id of ids) expect((await put(id, { excluded_methods: ["paypal"] })).status).toBe(200);

    const refusal = new Error("KV DELETE failed: 429 Too Many Requests");
    const original = env.CACHE.delete.bind(env.CACHE);
    const deletes = vi.spyOn(env.CACHE, "delete").mockImplementation(async (key: string) => {
      // The first key is refused once, the second every time.
      if (key === kvKey(keys[1]!) || deletes.mock.calls.filter(([k]) => k === key).length === 1) throw refusal;
      return original(key);
    });
    const started = Date.now();
    const result = await writeChecked(env, keys, before);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2 * KV_REWRITE_WAIT_MS - 50); // the second key was tried three times
    expect(result).toEqual({ unwritten: [keys[1]], error: refusal });
    expect(deletes.mock.calls.map(([k]) => k).sort()).toEqual([kvKey(keys[0]!), kvKey(keys[0]!), kvKey(keys[1]!), kvKey(keys[1]!), kvKey(keys[1]!)].sort());
    vi.restoreAllMocks();
    expect(await env.CACHE.get(kvKey(keys[0]!))).toBeNull();
    expect(await env.CACHE.get(kvKey(keys[1]!))).not.toBeNull(); // still the stale entry: that is why it is reported
  });

  it("/methods' own miss: a PUT that commits between its D1 read and its KV write does not leave the old profile behind", async () => {
    const id = "race_miss_wired";
    const k = await keyOf(id);
    const original = env.CACHE.put.bind(env.CACHE);
    let raced = false;
    vi.spyOn(env.CACHE, "put").mockImplementation(async (...args: Parameters<KVNamespace["put"]>) => {
      if (!raced && args[0] === kvKey(k)) {
        raced = true; // the miss has read D1 (a never-seen customer); now the PUT commits and refreshes first
        expect((await put(id, { excluded_methods: ["paypal"] })).status).toBe(200);
      }
      return original(...args);
    });
    const { profile, cache } = await readProfile(env, k.merchantId, k.customerRef, { crossMerchant: false }); // no waitUntil: the write is awaited
    expect(raced).toBe(true);
    expect({ cache, preferences: profile.preferences }).toEqual({ cache: "miss", preferences: null }); // it answered from the old read
    vi.restoreAllMocks();
    expect(await env.CACHE.get(kvKey(k))).toBeNull(); // its late write was dropped
    expect(await shown(id)).not.toContain("paypal");
  });

  it("when the check cannot read D1, the written entries are dropped (a drop is always safe) and the failure is reported", async () => {
    const id = "race_check_fails";
    expect((await put(id, { favorite_methods: ["klarna"] })).status).toBe(200);
    const k = await keyOf(id);
    const snapshot = await loadSnapshots(env.DB, [k], Date.now());
    const failure = new Error("D1_ERROR: Network connection lost.");
    const prepare = env.DB.prepare.bind(env.DB);
    vi.spyOn(env.DB, "prepare").mockImplementation((sql: string) => {
      if (sql.includes("AS v FROM")) throw failure; // the version check only
      return prepare(sql);
    });
    expect(await writeChecked(env, [k], snapshot)).toEqual({ unwritten: [], error: failure });
    vi.restoreAllMocks();
    expect(await env.CACHE.get(kvKey(k))).toBeNull();
    expect(await shown(id)).toContain("klarna");
  });

  /** Runs `change` once, when the first KV write of `k`'s entry is about to land (its writer has read D1). */
  function changeBeforeTheWrite(k: ProfileKey, change: () => Promise<void>) {
    const original = env.CACHE.put.bind(env.CACHE);
    const raced = { done: false };
    vi.spyOn(env.CACHE, "put").mockImplementation(async (...args: Parameters<KVNamespace["put"]>) => {
      if (!raced.done && args[0] === kvKey(k)) {
        raced.done = true;
        await change();
      }
      return original(...args);
    });
    return raced;
  }

  /** The real feedback consumer stores one payment (klarna) of `id` and refreshes its profile. */
  async function consumePayment(id: string, k: ProfileKey) {
    const now = new Date(Date.now() - 1000).toISOString();
    const body = { v: 1, merchant_id: m.merchantId, customer_ref: k.customerRef, event_id: `ev_${id}`, method_id: "klarna", amount: 1000, currency: "EUR",
      device_type: "desktop", location_country: "DE", offer_id: null, occurred_at: now, received_at: now, decision: null };
    const batch = createMessageBatch("feedback-events-dev", [{ id: `msg_${id}`, timestamp: new Date(), attempts: 1, body }]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env, ctx);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toEqual([`msg_${id}`]);
  }

  it("the feedback consumer's refresh: a PUT that commits between its D1 read and its KV write does not leave the old preferences behind", async () => {
    const id = "race_consumer_put";
    const k = await keyOf(id);
    const raced = changeBeforeTheWrite(k, async () => {
      expect((await put(id, { excluded_methods: ["paypal"] })).status).toBe(200);
    });
    await consumePayment(id, k);
    expect(raced.done).toBe(true);
    vi.restoreAllMocks();
    expect(await env.CACHE.get(kvKey(k))).toBeNull(); // the consumer's late write was dropped
    expect(await shown(id)).not.toContain("paypal");
  });

  it("the feedback consumer's refresh: a DELETE that commits between its D1 read and its KV write does not bring the customer back", async () => {
    const id = "race_consumer_delete";
    const k = await keyOf(id);
    const raced = changeBeforeTheWrite(k, async () => {
      expect((await api(m.secretKey, `/v1/personalize/customers/${id}`, { method: "DELETE" })).status).toBe(202);
    });
    await consumePayment(id, k);
    expect(raced.done).toBe(true);
    vi.restoreAllMocks();
    expect(await env.CACHE.get(kvKey(k))).toBeNull();
    expect(await methods(id)).toMatchObject({ personalized: false, fallback_reason: "customer_deleted" });
  });

  it("/methods' own miss: a restore that commits between its D1 read and its KV write does not keep the customer hidden", async () => {
    const id = "race_miss_restore";
    expect((await put(id, { default_method: "paypal" })).status).toBe(200);
    expect((await api(m.secretKey, `/v1/personalize/customers/${id}`, { method: "DELETE" })).status).toBe(202);
    const k = await keyOf(id);
    await env.CACHE.delete(kvKey(k));
    const raced = changeBeforeTheWrite(k, async () => {
      expect((await api(m.secretKey, `/v1/personalize/customers/${id}/restore`, { method: "POST" })).status).toBe(200);
    });
    const { profile } = await readProfile(env, k.merchantId, k.customerRef, { crossMerchant: false });
    expect({ raced: raced.done, pending: profile.pending_deletion }).toEqual({ raced: true, pending: true }); // it answered from the old read
    vi.restoreAllMocks();
    expect(await env.CACHE.get(kvKey(k))).toBeNull();
    const answer = await methods(id);
    expect({ personalized: answer.personalized, reason: answer.fallback_reason ?? null }).toEqual({ personalized: true, reason: null });
  });

  describe("a peer's late write of the customer's counts at another merchant (the cross-merchant part)", () => {
    const cross = { features: { targeted_offers: false, cross_merchant: true }, holdout_percent: 0 };
    const putAt = (shop: TestMerchant, id: string, body: object) =>
      api(shop.secretKey, "/v1/personalize/preferences", { method: "PUT", body: JSON.stringify({ customer_id: id, ...body }) });
    const answerAt = async (shop: TestMerchant, id: string) => {
      const res = await api(shop.secretKey, `/v1/personalize/methods?customer_id=${id}&device_type=desktop&country=DE&currency=EUR`);
      expect(res.status).toBe(200);
      return res.json<MethodsBody>();
    };
    /** The customer pays with google_pay 8 times at B and consents at both; A's profile holds B's counts. */
    async function peers(id: string) {
      const a = await createMerchant(cross);
      const b = await createMerchant(cross);
      await recordPayments(b.merchantId, id, repeat(8, { method_id: "google_pay" }));
      expect((await putAt(b, id, { cross_merchant_consent: true })).status).toBe(200);
      expect((await putAt(a, id, { cross_merchant_consent: true })).status).toBe(200);
      const k: ProfileKey = { merchantId: a.merchantId, customerRef: await customerRef(env.PII_KEY, id), crossMerchant: true };
      expect((await answerAt(a, id)).methods[0]!.method_id).toBe("google_pay");
      return { a, b, k };
    }

    for (const [change, apply] of [
      ["a revocation of cross-merchant consent", (b: TestMerchant, id: string) => putAt(b, id, { cross_merchant_consent: false })],
      ["an opt-out of personalization", (b: TestMerchant, id: string) => putAt(b, id, { personalization_enabled: false })],
      ["a deletion", (b: TestMerchant, id: string) => api(b.secretKey, `/v1/personalize/customers/${id}`, { method: "DELETE" })],
    ] as const) {
      it(`${change} at the other merchant: A's miss that read D1 before it does not keep B's counts`, async () => {
        const id = `race_cross_${change.split(" ")[1]}`;
        const { a, b, k } = await peers(id);
        const before = await loadSnapshots(env.DB, [k], Date.now()); // A's miss reads D1, B's counts included …
        expect(before.profiles[0]!.cross_merchant.map((x) => x.method_id)).toEqual(["google_pay"]);
        expect((await apply(b, id)).ok).toBe(true); // … B's change commits and drops A's entry …
        expect(await writeChecked(env, [k], before)).toEqual({ unwritten: [], error: null }); // … then the miss writes.
        expect(await env.CACHE.get(kvKey(k))).toBeNull();
        expect(await answerAt(a, id)).toMatchObject({ personalized: false, fallback_reason: "no_history" });
      });
    }

    it("a payment at the other merchant: A's miss that read D1 before it does not hide it", async () => {
      const { k } = await peers("race_cross_payment");
      const before = await loadSnapshots(env.DB, [k], Date.now());
      await env.DB.prepare("UPDATE method_stats SET uses = uses + 1, weight_ref = weight_ref + 1 WHERE customer_ref = ? AND merchant_id <> ? AND bucket = '*'")
        .bind(k.customerRef, k.merchantId)
        .run();
      await writeChecked(env, [k], before);
      expect(await env.CACHE.get(kvKey(k))).toBeNull();
    });

    it("without a change at the other merchant the entry stays", async () => {
      const { k } = await peers("race_cross_none");
      await env.CACHE.delete(kvKey(k));
      const snapshot = await loadSnapshots(env.DB, [k], Date.now());
      expect(await writeChecked(env, [k], snapshot)).toEqual({ unwritten: [], error: null });
      expect(JSON.parse((await env.CACHE.get(kvKey(k)))!)).toEqual(snapshot.profiles[0]);
    });
  });
});
