import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { openCheckoutSession, verifyClientSecret } from "../../src/checkout/session";
import { sha256Hex } from "../../src/crypto/hash";
import worker from "../../src/index";
import { verifyDecision } from "../../src/personalization/decision";
import { refOf, seedEvent } from "../helpers/customerData";
import { api, BASE, createMerchant, expectError, type TestMerchant } from "../helpers/fixtures";
import { patchD1 } from "../helpers/queryCount";

const ORIGIN = "https://shop.example";
const SECRET_FORMAT = /^(cs_[0-9a-f]{24})_secret_([A-Za-z0-9_-]{32})$/;

interface SessionJson {
  id: string;
  client_secret: string;
  merchant_id: string;
  customer_id: string;
  amount: number | null;
  currency: string | null;
  expires_at: string;
}

interface MethodsJson {
  methods: { method_id: string; confidence: number; score: number }[];
  personalized: boolean;
  fallback_reason?: string;
  decision_id: string;
  context: { device_type: string | null; country: string | null; amount: number | null; currency: string | null };
}

async function openSession(m: TestMerchant, body: Record<string, unknown>): Promise<SessionJson> {
  const res = await api(m.secretKey, "/v1/checkout/sessions", { method: "POST", body: JSON.stringify(body) });
  if (res.status !== 201) throw new Error(`openSession: ${res.status} ${await res.text()}`);
  return res.json();
}

/** A browser's GET: publishable key, the page's Origin. */
function browser(m: TestMerchant, path: string, origin = ORIGIN): Promise<Response> {
  return api(m.publishableKey, path, { headers: { Origin: origin } });
}

const qs = (params: Record<string, string>) => new URLSearchParams(params).toString();

/**
 * The real KV binding with the next put to a key under a given prefix refused, as KV does (a second
 * write to a key within a second, a transient error); every other call goes through.
 */
function kvRefusingOnePut(): { kv: KVNamespace; refuseNext: (prefix: string) => void } {
  let refuse = "";
  const kv = new Proxy(env.CACHE, {
    get(target, prop) {
      if (prop === "put") {
        return async (key: string, ...rest: unknown[]) => {
          if (refuse && key.startsWith(refuse)) {
            refuse = "";
            throw new Error("KV PUT failed: 429 Too Many Requests (injected)");
          }
          return (target.put as (...a: unknown[]) => Promise<void>).call(target, key, ...rest);
        };
      }
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  }) as KVNamespace;
  return { kv, refuseNext: (prefix) => (refuse = prefix) };
}

let shop: TestMerchant;
let other: TestMerchant;

beforeAll(async () => {
  shop = await createMerchant({ features: { targeted_offers: true, cross_merchant: false }, offers: [
    { offer_id: "paypal_promo", method_id: "paypal", title: "PayPal promo", description: "2 off", discount_type: "fixed", discount_value: 200 },
  ] });
  other = await createMerchant();
  // A loyal PayPal customer: personalized answers put paypal first.
  for (let i = 0; i < 6; i++) await seedEvent(shop.merchantId, "cus_paypal", { method_id: "paypal" });
});

describe("POST /v1/checkout/sessions", () => {
  it("opens a session with a client secret of more than 128 random bits, expiring by default after 30 minutes", async () => {
    const before = Date.now();
    const res = await api(shop.secretKey, "/v1/checkout/sessions", { method: "POST", body: JSON.stringify({ customer_id: "cus_paypal", amount: 9900, currency: "USD" }) });
    expect(res.status).toBe(201);
    expect(res.headers.get("Content-Type")).toMatch(/application\/json/);
    const s = (await res.json()) as SessionJson;
    const m = SECRET_FORMAT.exec(s.client_secret);
    expect(m).not.toBeNull();
    expect(m![1]).toBe(s.id);
    // 32 base64url characters = 192 bits.
    expect(m![2]!.length * 6).toBeGreaterThanOrEqual(128);
    expect(s).toMatchObject({ merchant_id: shop.merchantId, customer_id: "cus_paypal", amount: 9900, currency: "USD" });
    const expires = Date.parse(s.expires_at);
    expect(expires).toBeGreaterThanOrEqual(before + 1800_000 - 1000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 1800_000 + 1000);
  });

  it("defaults amount and currency to null and honours expires_in", async () => {
    const s = await openSession(shop, { customer_id: "cus_x", expires_in: 60 });
    expect(s.amount).toBeNull();
    expect(s.currency).toBeNull();
    expect(Math.abs(Date.parse(s.expires_at) - (Date.now() + 60_000))).toBeLessThan(5_000);
  });

  it("keeps only a hash of the secret and the customer's pseudonym in KV, under session:{id}, expiring with the session", async () => {
    const s = await openSession(shop, { customer_id: "cus_kv", country: "NL", expires_in: 600 });
    const raw = await env.CACHE.get(`session:${s.id}`);
    expect(raw).not.toBeNull();
    expect(raw).not.toContain(s.client_secret);
    expect(raw).not.toContain(s.client_secret.split("_secret_")[1]);
    expect(raw).not.toContain("cus_kv");
    const stored = JSON.parse(raw!) as Record<string, unknown>;
    expect(stored).toMatchObject({ merchant_id: shop.merchantId, customer_ref: await refOf("cus_kv"), country: "NL", secret_hash: await sha256Hex(s.client_secret) });
    const listed = await env.CACHE.list({ prefix: `session:${s.id}` });
    const expiration = listed.keys[0]?.expiration;
    expect(expiration).toBeDefined();
    expect(Math.abs(expiration! - (Date.now() / 1000 + 600))).toBeLessThan(10);
  });

  it("gives every session its own id and secret", async () => {
    const a = await openSession(shop, { customer_id: "cus_same" });
    const b = await openSession(shop, { customer_id: "cus_same" });
    expect(a.id).not.toBe(b.id);
    expect(a.client_secret).not.toBe(b.client_secret);
  });

  it("may be opened for a customer who opted out (the answers fall back)", async () => {
    const put = await api(shop.secretKey, "/v1/personalize/preferences", { method: "PUT", body: JSON.stringify({ customer_id: "cus_optout", personalization_enabled: false }) });
    expect(put.status).toBe(200);
    const res = await api(shop.secretKey, "/v1/checkout/sessions", { method: "POST", body: JSON.stringify({ customer_id: "cus_optout" }) });
    expect(res.status).toBe(201);
    const { client_secret } = (await res.json()) as SessionJson;
    const answer = (await (await browser(shop, `/v1/personalize/methods?${qs({ client_secret })}`)).json()) as MethodsJson;
    expect(answer).toMatchObject({ personalized: false, fallback_reason: "personalization_disabled" });
  });

  it.each([
    [{}, "customer_id"],
    [{ customer_id: "bad id!" }, "customer_id"],
    [{ customer_id: "c", expires_in: 59 }, "expires_in"],
    [{ customer_id: "c", expires_in: 86_401 }, "expires_in"],
    [{ customer_id: "c", expires_in: 90.5 }, "expires_in"],
    [{ customer_id: "c", amount: -1 }, "amount"],
    [{ customer_id: "c", currency: "usd" }, "currency"],
    [{ customer_id: "c", country: "USA" }, "country"],
    [{ customer_id: "c", device_type: "watch" }, "device_type"],
    [{ customer_id: "c", customer: "typo" }, "customer"],
  ])("rejects %j with 400 naming %s", async (body, path) => {
    const res = await api(shop.secretKey, "/v1/checkout/sessions", { method: "POST", body: JSON.stringify(body) });
    const err = await expectError(res, 400, "VALIDATION_ERROR");
    expect(err.error.details?.map((d) => d.path)).toContain(path);
  });

  it("answers INVALID_JSON for a body that is not JSON", async () => {
    const res = await api(shop.secretKey, "/v1/checkout/sessions", { method: "POST", body: "{nope" });
    await expectError(res, 400, "INVALID_JSON");
  });

  it("is closed to publishable keys, to missing keys and to other merchants' ids", async () => {
    await expectError(await api(shop.publishableKey, "/v1/checkout/sessions", { method: "POST", body: JSON.stringify({ customer_id: "c" }) }), 403, "KEY_NOT_ALLOWED");
    await expectError(await api(null, "/v1/checkout/sessions", { method: "POST", body: JSON.stringify({ customer_id: "c" }) }), 401, "MISSING_API_KEY");
    await expectError(
      await api(shop.secretKey, "/v1/checkout/sessions", { method: "POST", body: JSON.stringify({ customer_id: "c", merchant_id: other.merchantId }) }),
      403,
      "MERCHANT_MISMATCH",
    );
  });
});

describe("POST /v1/checkout/sessions for a customer whose deletion is pending", () => {
  const customerPath = (id: string, suffix = "") => `/v1/personalize/customers/${id}${suffix}`;
  /** Erases `id` and moves the grace period's end to `purgeAfterMs` (the 30 days cannot be waited for). */
  async function eraseUntil(id: string, purgeAfterMs: number): Promise<void> {
    expect((await api(shop.secretKey, customerPath(id), { method: "DELETE" })).status).toBe(202);
    const moved = await env.DB.prepare("UPDATE customer_deletions SET purge_after = ? WHERE merchant_id = ? AND customer_ref = ?")
      .bind(new Date(purgeAfterMs).toISOString(), shop.merchantId, await refOf(id))
      .run();
    expect(moved.meta.changes).toBe(1);
  }
  async function kvExpiration(sessionId: string): Promise<number> {
    const listed = await env.CACHE.list({ prefix: `session:${sessionId}` });
    expect(listed.keys).toHaveLength(1);
    return listed.keys[0]!.expiration!;
  }

  it("ends the session by purge_after, in its answer and in KV, so nothing of it outlives the purge; the answers say customer_deleted", async () => {
    const purgeAfter = Date.now() + 600_000;
    await eraseUntil("cus_erasing", purgeAfter);
    const s = await openSession(shop, { customer_id: "cus_erasing", expires_in: 86_400 });
    expect(Date.parse(s.expires_at)).toBe(purgeAfter);
    expect(Math.abs((await kvExpiration(s.id)) - purgeAfter / 1000)).toBeLessThan(5);
    const answer = (await (await browser(shop, `/v1/personalize/methods?${qs({ client_secret: s.client_secret })}`)).json()) as MethodsJson;
    expect(answer).toMatchObject({ personalized: false, fallback_reason: "customer_deleted" });
    // A shorter session than what is left of the grace period is untouched.
    const short = await openSession(shop, { customer_id: "cus_erasing", expires_in: 120 });
    expect(Math.abs(Date.parse(short.expires_at) - (Date.now() + 120_000))).toBeLessThan(5_000);
  });

  it("past purge_after (the purge not run yet) a session lasts the 60 s KV keeps an entry; after a restore, or once purged, sessions are whole again", async () => {
    await eraseUntil("cus_due", Date.now() - 1_000);
    const due = await openSession(shop, { customer_id: "cus_due", expires_in: 3_600 });
    expect(Math.abs(Date.parse(due.expires_at) - (Date.now() + 60_000))).toBeLessThan(5_000);

    await eraseUntil("cus_restored", Date.now() + 600_000);
    expect((await api(shop.secretKey, customerPath("cus_restored", "/restore"), { method: "POST" })).status).toBe(200);
    const restored = await openSession(shop, { customer_id: "cus_restored", expires_in: 3_600 });
    expect(Math.abs(Date.parse(restored.expires_at) - (Date.now() + 3_600_000))).toBeLessThan(5_000);

    // A purged tombstone: the customer came back, nothing is pending.
    await env.DB.prepare("UPDATE customer_deletions SET status = 'purged', purged_at = ? WHERE merchant_id = ? AND customer_ref = ?")
      .bind(new Date().toISOString(), shop.merchantId, await refOf("cus_due"))
      .run();
    const back = await openSession(shop, { customer_id: "cus_due", expires_in: 3_600 });
    expect(Math.abs(Date.parse(back.expires_at) - (Date.now() + 3_600_000))).toBeLessThan(5_000);
  });

  it("answers 503 UNAVAILABLE, and stores nothing, when the deletion state cannot be read (the backend retries or renders without a session)", async () => {
    const before = (await env.CACHE.list({ prefix: "session:" })).keys.length;
    expect((await api(shop.secretKey, "/v1/payment-methods")).status).toBe(200); // the key and merchant cached
    const restoreD1 = patchD1(() => () => Promise.reject(new Error("D1_ERROR: Network connection lost (injected)")));
    let res: Response;
    try {
      res = await api(shop.secretKey, "/v1/checkout/sessions", { method: "POST", body: JSON.stringify({ customer_id: "cus_paypal" }) });
    } finally {
      restoreD1();
    }
    await expectError(res, 503, "UNAVAILABLE");
    expect((await env.CACHE.list({ prefix: "session:" })).keys.length).toBe(before);
  });
});

describe("POST /v1/checkout/sessions with an Idempotency-Key", () => {
  const create = (m: TestMerchant, body: Record<string, unknown>, key?: string) =>
    api(m.secretKey, "/v1/checkout/sessions", { method: "POST", body: JSON.stringify(body), headers: key ? { "Idempotency-Key": key } : {} });

  it("a retry of the same request answers the same live session, marked Idempotent-Replayed; the secret works", async () => {
    const body = { customer_id: "cus_idem_session", amount: 4200, currency: "EUR", expires_in: 600 };
    const first = await create(shop, body, "order_77_checkout");
    expect(first.status).toBe(201);
    expect(first.headers.get("Idempotent-Replayed")).toBeNull();
    const a = await first.json<SessionJson>();
    await new Promise((r) => setTimeout(r, 20));
    const retry = await create(shop, { currency: "EUR", expires_in: 600, amount: 4200, customer_id: "cus_idem_session" }, "order_77_checkout"); // same request, fields reordered
    expect(retry.status).toBe(201);
    expect(retry.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await retry.json()).toEqual(a); // same id, secret and expires_at
    expect(a.client_secret).toMatch(/^cs_[0-9a-f]{24}_secret_[A-Za-z0-9_-]{32}$/);
    expect((await browser(shop, `/v1/personalize/methods?${qs({ client_secret: a.client_secret })}`)).status).toBe(200);
  });

  it("the same request twice at once opens one session; each answer's expires_at is its own request's, moments apart (docs/checkout.md)", async () => {
    const body = { customer_id: "cus_idem_concurrent", amount: 1000, currency: "EUR" };
    const answers = await Promise.all([create(shop, body, "order_concurrent"), create(shop, body, "order_concurrent")]);
    expect(answers.map((r) => r.status)).toEqual([201, 201]);
    const [a, b] = await Promise.all(answers.map((r) => r.json<SessionJson>()));
    expect({ id: b!.id, secret: b!.client_secret }).toEqual({ id: a!.id, secret: a!.client_secret });
    const stored = await (await create(shop, body, "order_concurrent")).json<SessionJson>();
    expect(stored.id).toBe(a!.id);
    for (const answer of [a!, b!]) expect(Math.abs(Date.parse(answer.expires_at) - Date.parse(stored.expires_at))).toBeLessThan(1000);
    expect((await browser(shop, `/v1/personalize/methods?${qs({ client_secret: a!.client_secret })}`)).status).toBe(200);
  });

  it("other content under the same key, the same request under another key or merchant, or no key: another session", async () => {
    const body = { customer_id: "cus_idem_other", amount: 1000 };
    const base = await (await create(shop, body, "k1")).json<SessionJson>();
    const ids = [
      (await (await create(shop, { ...body, amount: 1001 }, "k1")).json<SessionJson>()).id,
      (await (await create(shop, body, "k2")).json<SessionJson>()).id,
      (await (await create(other, body, "k1")).json<SessionJson>()).id,
      (await (await create(shop, body)).json<SessionJson>()).id,
      (await (await create(shop, body)).json<SessionJson>()).id,
    ];
    expect(new Set([base.id, ...ids]).size).toBe(6);
  });

  it("a retry after the session expired is answered as it was (expired) and its secret stays refused", async () => {
    const body = { customer_id: "cus_idem_expired", expires_in: 60 };
    const first = await (await create(shop, body, "k_expired")).json<SessionJson>();
    // Expire it: its entry leaves KV with it; the replay record (its opened_at kept, so a retry past
    // UTC midnight still finds it) stays for the idempotency window.
    await env.CACHE.delete(`session:${first.id}`);
    const record = (await env.CACHE.get<{ expires_at: string; opened_at: string }>(`session_replay:${first.id}`, "json"))!;
    expect(record.opened_at).toEqual(expect.any(String));
    await env.CACHE.put(`session_replay:${first.id}`, JSON.stringify({ ...record, expires_at: new Date(Date.now() - 1000).toISOString() }));
    const retry = await create(shop, body, "k_expired");
    expect(retry.headers.get("Idempotent-Replayed")).toBe("true");
    const again = await retry.json<SessionJson>();
    expect(again.id).toBe(first.id);
    expect(Date.parse(again.expires_at)).toBeLessThan(Date.now());
    await expectError(await browser(shop, `/v1/personalize/methods?${qs({ client_secret: first.client_secret })}`), 401, "INVALID_CLIENT_SECRET");
  });

  describe("across UTC midnight: the 24 hours count from the first request", () => {
    const at = (day: number, h: number, m: number, sec = 0) => Date.UTC(2026, 11, day, h, m, sec);
    const idemOf = (key: string) => ({ signingKey: env.SIGNING_KEY, idempotencyKey: key, fingerprint: "{}" });
    const base = (ref: string) => ({ merchantId: shop.merchantId, customerRef: ref, expiresInSeconds: 600 });

    it("a retry at 00:00:01 of a request at 23:59:30 answers the same session, as it was; 24 h after it a new one", async () => {
      const idem = idemOf("k_midnight");
      const s = base("ref_midnight");
      const first = await openCheckoutSession(env.CACHE, { ...s, nowMs: at(3, 23, 59, 30) }, idem);
      expect(first.replayed).toBe(false);
      const sameOf = (o: typeof first) => ({ id: o.id, clientSecret: o.clientSecret, expires_at: o.session.expires_at });
      for (const nowMs of [at(4, 0, 0, 1), at(4, 23, 59, 29)]) {
        const retry = await openCheckoutSession(env.CACHE, { ...s, nowMs }, idem);
        expect(retry.replayed).toBe(true);
        expect(sameOf(retry)).toEqual(sameOf(first));
      }
      // Its secret still opens it while it is live (the 00:00:01 retry is within its 600 s).
      expect(await verifyClientSecret(env.CACHE, first.clientSecret, shop.merchantId, at(4, 0, 0, 1))).not.toBeNull();
      const later = await openCheckoutSession(env.CACHE, { ...s, nowMs: at(4, 23, 59, 31) }, idem);
      expect(later.replayed).toBe(false);
      expect(later.id).not.toBe(first.id);
      expect(later.clientSecret).not.toBe(first.clientSecret);
      expect(later.session.expires_at).toBe(new Date(at(4, 23, 59, 31) + 600_000).toISOString());
    });

    it("more than 24 h after the first request a retry opens a new session (yesterday's record is too old), also two days later", async () => {
      const idem = idemOf("k_day_later");
      const s = base("ref_day_later");
      const first = await openCheckoutSession(env.CACHE, { ...s, nowMs: at(3, 10, 0) }, idem);
      const within = await openCheckoutSession(env.CACHE, { ...s, nowMs: at(4, 9, 59, 59) }, idem);
      expect(within).toMatchObject({ id: first.id, clientSecret: first.clientSecret, replayed: true });
      const after = await openCheckoutSession(env.CACHE, { ...s, nowMs: at(4, 10, 0, 1) }, idem);
      expect(after.replayed).toBe(false);
      expect(after.id).not.toBe(first.id);
      // The new session is what the key answers from now on, the rest of its day and 24 h from it.
      const again = await openCheckoutSession(env.CACHE, { ...s, nowMs: at(5, 10, 0) }, idem);
      expect(again).toMatchObject({ id: after.id, clientSecret: after.clientSecret, replayed: true });
      const twoDays = await openCheckoutSession(env.CACHE, { ...s, nowMs: at(6, 10, 0, 2) }, idem);
      expect(twoDays.replayed).toBe(false);
      expect(new Set([first.id, after.id, twoDays.id]).size).toBe(3);
    });

    it("yesterday's session that expired is answered as expired and its secret stays refused", async () => {
      const idem = idemOf("k_midnight_expired");
      const s = { ...base("ref_midnight_expired"), expiresInSeconds: 60 };
      const first = await openCheckoutSession(env.CACHE, { ...s, nowMs: at(3, 23, 59, 0) }, idem);
      const retry = await openCheckoutSession(env.CACHE, { ...s, nowMs: at(4, 0, 0, 30) }, idem);
      expect(retry).toMatchObject({ id: first.id, clientSecret: first.clientSecret, replayed: true });
      expect(retry.session.expires_at).toBe(new Date(at(4, 0, 0, 0)).toISOString());
      expect(await verifyClientSecret(env.CACHE, retry.clientSecret, shop.merchantId, at(4, 0, 0, 30))).toBeNull();
    });

    it("a replay record written before opened_at was kept (nor in the entry) keeps the same-day rule", async () => {
      const idem = idemOf("k_legacy_record");
      const s = base("ref_legacy_record");
      const first = await openCheckoutSession(env.CACHE, { ...s, nowMs: at(3, 23, 59, 30) }, idem);
      // As the code before this change wrote them: the record holds expires_at only, the entry no opened_at.
      await env.CACHE.put(`session_replay:${first.id}`, JSON.stringify({ expires_at: first.session.expires_at }), { expirationTtl: 2 * 86400 });
      const { opened_at: _, ...entry } = (await env.CACHE.get<Record<string, unknown>>(`session:${first.id}`, "json"))!;
      await env.CACHE.put(`session:${first.id}`, JSON.stringify(entry), { expirationTtl: 600 });
      const sameDay = await openCheckoutSession(env.CACHE, { ...s, nowMs: at(3, 23, 59, 50) }, idem);
      expect(sameDay).toMatchObject({ id: first.id, clientSecret: first.clientSecret, replayed: true });
      expect(await env.CACHE.get(`session_replay:${first.id}`, "json")).toEqual({ expires_at: first.session.expires_at });
      const nextDay = await openCheckoutSession(env.CACHE, { ...s, nowMs: at(4, 0, 0, 1) }, idem);
      expect(nextDay.replayed).toBe(false);
      expect(nextDay.id).not.toBe(first.id);
      expect(await env.CACHE.get(`session_replay:${nextDay.id}`, "json")).toEqual({
        expires_at: nextDay.session.expires_at,
        opened_at: new Date(at(4, 0, 0, 1)).toISOString(),
      });
    });

    it("a write that failed half-way before midnight heals on a retry after it, with the time it was opened", async () => {
      const { kv, refuseNext } = kvRefusingOnePut();
      // The record's write fails: the entry, which has opened_at, answers the retry and the record is put back.
      const idem = idemOf("k_midnight_half");
      const s = base("ref_midnight_half");
      refuseNext("session_replay:");
      await expect(openCheckoutSession(kv, { ...s, nowMs: at(3, 23, 59, 59) }, idem)).rejects.toThrow();
      const retry = await openCheckoutSession(kv, { ...s, nowMs: at(4, 0, 0, 2) }, idem);
      expect(retry.replayed).toBe(true);
      expect(retry.session.expires_at).toBe(new Date(at(3, 23, 59, 59) + 600_000).toISOString());
      expect(await env.CACHE.get(`session_replay:${retry.id}`, "json")).toEqual({
        expires_at: retry.session.expires_at,
        opened_at: new Date(at(3, 23, 59, 59)).toISOString(),
      });
      expect(await verifyClientSecret(env.CACHE, retry.clientSecret, shop.merchantId, at(4, 0, 0, 2))).not.toBeNull();
      // Yesterday's live entry lost (an earlier half-failed write): put back from the record.
      const idem2 = idemOf("k_midnight_heal");
      const s2 = base("ref_midnight_heal");
      const opened = await openCheckoutSession(env.CACHE, { ...s2, nowMs: at(3, 23, 59, 30) }, idem2);
      await env.CACHE.delete(`session:${opened.id}`);
      const healed = await openCheckoutSession(env.CACHE, { ...s2, nowMs: at(4, 0, 0, 1) }, idem2);
      expect(healed).toMatchObject({ id: opened.id, replayed: true });
      expect(await verifyClientSecret(env.CACHE, healed.clientSecret, shop.merchantId, at(4, 0, 0, 1))).toMatchObject({
        opened_at: new Date(at(3, 23, 59, 30)).toISOString(),
        expires_at: opened.session.expires_at,
      });
    });

    it("a session capped by a pending deletion's purge_after is answered with that cap after midnight; a new one after 24 h is capped again", async () => {
      const idem = idemOf("k_midnight_capped");
      const s = { ...base("ref_midnight_capped"), expiresInSeconds: 86_400 };
      const purgeAfter = at(4, 0, 5);
      const first = await openCheckoutSession(env.CACHE, { ...s, nowMs: at(3, 23, 59, 30), notAfterMs: purgeAfter }, idem);
      expect(first.session.expires_at).toBe(new Date(purgeAfter).toISOString());
      const retry = await openCheckoutSession(env.CACHE, { ...s, nowMs: at(4, 0, 0, 1), notAfterMs: purgeAfter }, idem);
      expect(retry).toMatchObject({ id: first.id, replayed: true, session: { expires_at: first.session.expires_at } });
      // Past purge_after (the purge not run yet): the new session lasts the 60 s KV keeps an entry.
      const later = await openCheckoutSession(env.CACHE, { ...s, nowMs: at(4, 23, 59, 31), notAfterMs: purgeAfter }, idem);
      expect(later).toMatchObject({ replayed: false, session: { expires_at: new Date(at(4, 23, 59, 31) + 60_000).toISOString() } });
    });
  });

  it("the session's KV entry expires with it (API.md §7); the replay record a key leaves holds no customer data", async () => {
    const first = await (await create(shop, { customer_id: "cus_idem_ttl", amount: 990, currency: "EUR", expires_in: 600 }, "k_ttl")).json<SessionJson>();
    const plain = await (await create(shop, { customer_id: "cus_idem_ttl", expires_in: 900 })).json<SessionJson>();
    const expiration = async (key: string) => (await env.CACHE.list({ prefix: key })).keys.find((k) => k.name === key)?.expiration;
    for (const [s, ttl] of [[first, 600], [plain, 900]] as const) {
      const at = await expiration(`session:${s.id}`);
      expect(Math.abs(at! - (Date.now() / 1000 + ttl))).toBeLessThan(5);
    }
    const replay = await env.CACHE.get(`session_replay:${first.id}`);
    const { opened_at: openedAt, ...rest } = JSON.parse(replay!) as { opened_at: string };
    expect(rest).toEqual({ expires_at: first.expires_at });
    expect(Math.abs(Date.parse(openedAt) - (Date.parse(first.expires_at) - 600_000))).toBeLessThan(1000);
    expect(await env.CACHE.get(`session_replay:${plain.id}`)).toBeNull();
    expect((await expiration(`session_replay:${first.id}`))! - Date.now() / 1000).toBeGreaterThan(47 * 3600);
  });

  it("a retry of a session stored by the code before replay records (its entry kept two days, no record) is answered as it was, live or expired", async () => {
    const asOldCode = async (id: string, expiresAt?: string) => {
      await env.CACHE.delete(`session_replay:${id}`);
      const stored = (await env.CACHE.get<Record<string, unknown>>(`session:${id}`, "json"))!;
      await env.CACHE.put(`session:${id}`, JSON.stringify({ ...stored, ...(expiresAt ? { expires_at: expiresAt } : {}) }), { expirationTtl: 2 * 86400 });
    };
    const live = { customer_id: "cus_old_live", amount: 4200, currency: "EUR", expires_in: 600 };
    const first = await (await create(shop, live, "k_old_live")).json<SessionJson>();
    await asOldCode(first.id);
    await new Promise((r) => setTimeout(r, 20));
    const retry = await create(shop, live, "k_old_live");
    expect(retry.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await retry.json()).toEqual(first);

    const expiring = { customer_id: "cus_old_expired", expires_in: 60 };
    const gone = await (await create(shop, expiring, "k_old_expired")).json<SessionJson>();
    await asOldCode(gone.id, new Date(Date.now() - 1000).toISOString());
    const again = await (await create(shop, expiring, "k_old_expired")).json<SessionJson>();
    expect(again.id).toBe(gone.id);
    expect(Date.parse(again.expires_at)).toBeLessThan(Date.now());
    await expectError(await browser(shop, `/v1/personalize/methods?${qs({ client_secret: gone.client_secret })}`), 401, "INVALID_CLIENT_SECRET");
  });

  it("a write that fails half-way (KV refuses one put) leaves a retry with a session whose secret works", async () => {
    const { kv, refuseNext } = kvRefusingOnePut();
    for (const [failing, replayedOnRetry] of [["session:", false], ["session_replay:", true]] as const) {
      const s = { merchantId: shop.merchantId, customerRef: `ref_half_${failing}`, expiresInSeconds: 600, nowMs: Date.now() };
      const idem = { signingKey: env.SIGNING_KEY, idempotencyKey: `k_half_${failing}`, fingerprint: "{}" };
      refuseNext(failing);
      await expect(openCheckoutSession(kv, s, idem)).rejects.toThrow(); // the route answers 503: retry
      const retry = await openCheckoutSession(kv, { ...s, nowMs: Date.now() }, idem);
      expect(retry.replayed).toBe(replayedOnRetry);
      expect(await env.CACHE.get(`session_replay:${retry.id}`)).not.toBeNull();
      expect(await verifyClientSecret(env.CACHE, retry.clientSecret, shop.merchantId, Date.now())).not.toBeNull();
    }
    // A replay record whose session entry is gone while still live (an earlier half-failed write): the entry is put back.
    const s = { merchantId: shop.merchantId, customerRef: "ref_heal", expiresInSeconds: 600, nowMs: Date.now() };
    const idem = { signingKey: env.SIGNING_KEY, idempotencyKey: "k_heal", fingerprint: "{}" };
    const opened = await openCheckoutSession(env.CACHE, s, idem);
    await env.CACHE.delete(`session:${opened.id}`);
    const healed = await openCheckoutSession(env.CACHE, { ...s, nowMs: Date.now() }, idem);
    expect(healed).toMatchObject({ id: opened.id, replayed: true });
    expect(await verifyClientSecret(env.CACHE, healed.clientSecret, shop.merchantId, Date.now())).not.toBeNull();
  });

  describe("the deletion state (D1) and a retry's KV reads run side by side, with the outcomes they had one after the other", () => {
    const post = async (cache: KVNamespace, body: Record<string, unknown>, key: string) => {
      const ctx = createExecutionContext();
      const req = new Request(`${BASE}/v1/checkout/sessions`, { method: "POST", body: JSON.stringify(body), headers: { "X-API-Key": shop.secretKey, "Content-Type": "application/json", "Idempotency-Key": key } });
      const res = await worker.fetch(req, { ...env, CACHE: cache }, ctx);
      await waitOnExecutionContext(ctx);
      return res;
    };
    /** The real KV binding, noting the replay-record reads and failing every call when `failing` is set. */
    const watchedKv = (failing = false) => {
      const seen = { replayRead: false, puts: 0 };
      const kv = new Proxy(env.CACHE, {
        get(target, prop) {
          const value = Reflect.get(target, prop) as unknown;
          if (typeof value !== "function") return value;
          return (key: unknown, ...rest: unknown[]) => {
            if (prop === "get" && String(key).startsWith("session_replay:")) seen.replayRead = true;
            if (prop === "put" && String(key).startsWith("session")) seen.puts += 1;
            if (failing && String(key).startsWith("session")) return Promise.reject(new Error("KV GET failed: 503 (injected)"));
            return (value as (...a: unknown[]) => unknown).call(target, key, ...rest);
          };
        },
      }) as KVNamespace;
      return { kv, seen };
    };

    it("the KV reads start while the D1 read is still out", async () => {
      expect((await api(shop.secretKey, "/v1/payment-methods")).status).toBe(200); // the key and merchant cached
      const { kv, seen } = watchedKv();
      let sawKvDuringD1: boolean | undefined;
      const restoreD1 = patchD1((_name, original) => async function (this: unknown, ...args: unknown[]) {
        // Held until the replay record has been read, or half a second (a sequential route never reads it meanwhile).
        for (let waited = 0; !seen.replayRead && waited < 500; waited += 10) await new Promise((r) => setTimeout(r, 10));
        sawKvDuringD1 ??= seen.replayRead;
        return original.apply(this, args);
      });
      let res: Response;
      try {
        res = await post(kv, { customer_id: "cus_parallel" }, "k_parallel");
      } finally {
        restoreD1();
      }
      expect(res.status).toBe(201);
      expect(sawKvDuringD1).toBe(true);
    });

    it("a D1 failure is a 503 on a replay too, and writes nothing; with KV failing as well, D1's 503 is the answer", async () => {
      const body = { customer_id: "cus_parallel_replay", expires_in: 600 };
      const first = await post(env.CACHE, body, "k_parallel_replay");
      expect(first.status).toBe(201);
      const { id } = await first.json<SessionJson>();
      await env.CACHE.delete(`session:${id}`); // a half-failed write a replay would heal
      for (const kvFails of [false, true]) {
        const { kv, seen } = watchedKv(kvFails);
        const restoreD1 = patchD1(() => () => Promise.reject(new Error("D1_ERROR: Network connection lost (injected)")));
        let res: Response;
        try {
          res = await post(kv, body, "k_parallel_replay");
        } finally {
          restoreD1();
        }
        expect((await expectError(res, 503, "UNAVAILABLE")).error.message).toBe("The checkout session cannot be opened right now; retry");
        expect(seen.puts).toBe(0);
      }
      expect(await env.CACHE.get(`session:${id}`)).toBeNull();
      // D1 back, KV reads failing: the KV 503.
      const { kv } = watchedKv(true);
      expect((await expectError(await post(kv, body, "k_parallel_replay"), 503, "UNAVAILABLE")).error.message).toBe("The checkout session cannot be stored right now; retry");
      // Both back: the replay, healed.
      const retry = await post(env.CACHE, body, "k_parallel_replay");
      expect(retry.headers.get("Idempotent-Replayed")).toBe("true");
      expect(await env.CACHE.get(`session:${id}`)).not.toBeNull();
    });
  });

  it("an Idempotency-Key of more than 128 characters is a 400", async () => {
    const err = await expectError(await create(shop, { customer_id: "cus_x" }, "k".repeat(129)), 400, "VALIDATION_ERROR");
    expect(err.error.details?.map((d) => d.path)).toContain("idempotency-key");
  });
});

describe("GET /v1/personalize/methods and /offers through a checkout session", () => {
  it("gives the publishable key the same personal order the secret key gets for that customer, decision_id included", async () => {
    const s = await openSession(shop, { customer_id: "cus_paypal" });
    const viaSession = await browser(shop, `/v1/personalize/methods?${qs({ client_secret: s.client_secret, device_type: "mobile" })}`);
    expect(viaSession.status).toBe(200);
    const body = (await viaSession.json()) as MethodsJson;
    const direct = (await (await api(shop.secretKey, `/v1/personalize/methods?${qs({ customer_id: "cus_paypal", device_type: "mobile" })}`)).json()) as MethodsJson;
    expect(body.personalized).toBe(true);
    expect(body.methods[0]!.method_id).toBe("paypal");
    expect(body.methods.map((m) => m.method_id)).toEqual(direct.methods.map((m) => m.method_id));
    expect(body.decision_id).toMatch(/^dec_/);
  });

  it("takes amount, currency and country from the session; a page may repeat them but not change them", async () => {
    const s = await openSession(shop, { customer_id: "cus_paypal", amount: 4200, currency: "EUR", country: "NL" });
    const res = await browser(shop, `/v1/personalize/methods?${qs({ client_secret: s.client_secret })}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as MethodsJson;
    expect(body.context).toMatchObject({ amount: 4200, currency: "EUR", country: "NL" });
    expect(body.methods.map((m) => m.method_id)).toContain("ideal");

    const same = await browser(shop, `/v1/personalize/methods?${qs({ client_secret: s.client_secret, amount: "4200", currency: "EUR", country: "NL", device_type: "desktop" })}`);
    expect(same.status).toBe(200);
    expect(((await same.json()) as MethodsJson).context).toMatchObject({ amount: 4200, currency: "EUR", country: "NL", device_type: "desktop" });

    // Re-pricing the basket from the page would change availability, offers and what analytics records.
    const tampered = await browser(shop, `/v1/personalize/methods?${qs({ client_secret: s.client_secret, amount: "1", currency: "USD", country: "US" })}`);
    const err = await expectError(tampered, 400, "VALIDATION_ERROR");
    expect(err.error.details!.map((d) => d.path).sort()).toEqual(["amount", "country", "currency"]);
    const offers = await browser(shop, `/v1/personalize/offers?${qs({ client_secret: s.client_secret, amount: "1" })}`);
    await expectError(offers, 400, "VALIDATION_ERROR");
  });

  it("lets the page say what the session leaves open: country and device, but never a basket the session lacks", async () => {
    const s = await openSession(shop, { customer_id: "cus_paypal" });
    const withCountry = await browser(shop, `/v1/personalize/methods?${qs({ client_secret: s.client_secret, country: "NL", device_type: "mobile" })}`);
    expect(withCountry.status).toBe(200);
    expect(((await withCountry.json()) as MethodsJson).context).toMatchObject({ country: "NL", device_type: "mobile", amount: null });
    const err = await expectError(await browser(shop, `/v1/personalize/methods?${qs({ client_secret: s.client_secret, amount: "5000" })}`), 400, "VALIDATION_ERROR");
    expect(err.error.details).toEqual([{ path: "amount", message: expect.stringMatching(/session/) }]);
    // A secret key naming the customer directly still passes the basket in the query.
    const direct = await api(shop.secretKey, `/v1/personalize/methods?${qs({ customer_id: "cus_paypal", amount: "5000", currency: "EUR" })}`);
    expect(((await direct.json()) as MethodsJson).context).toMatchObject({ amount: 5000, currency: "EUR" });
  });

  it("takes the device from the browser; the session's device_type only when nothing else says", async () => {
    const s = await openSession(shop, { customer_id: "cus_paypal", device_type: "desktop" });
    const iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
    const path = `/v1/personalize/methods?${qs({ client_secret: s.client_secret })}`;
    const fromUa = await api(shop.publishableKey, path, { headers: { Origin: ORIGIN, "User-Agent": iphone } });
    expect(((await fromUa.json()) as MethodsJson).context.device_type).toBe("mobile");
    const explicit = await api(shop.publishableKey, `${path}&device_type=tablet`, { headers: { Origin: ORIGIN, "User-Agent": iphone } });
    expect(((await explicit.json()) as MethodsJson).context.device_type).toBe("tablet");
    const noUa = await api(shop.publishableKey, path, { headers: { Origin: ORIGIN, "User-Agent": "" } });
    expect(((await noUa.json()) as MethodsJson).context.device_type).toBe("desktop");
  });

  it("answers 200 degraded, not an error, when the session store fails (a checkout never fails because we did)", async () => {
    const s = await openSession(shop, { customer_id: "cus_paypal", country: "US" });
    // The real KV binding, with reads of checkout sessions failing (keys and merchants still read).
    const cache = new Proxy(env.CACHE, {
      get(target, prop) {
        const value = Reflect.get(target, prop) as unknown;
        if (prop === "get") return (key: string, ...rest: unknown[]) => (key.startsWith("session:") ? Promise.reject(new Error("KV unavailable (test)")) : (value as (...a: unknown[]) => unknown).call(target, key, ...rest));
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const call = async (workerEnv: typeof env) => {
      const ctx = createExecutionContext();
      const res = await worker.fetch(new Request(`${BASE}/v1/personalize/methods?${qs({ client_secret: s.client_secret, country: "US" })}`, { headers: { "X-API-Key": shop.publishableKey, Origin: ORIGIN } }), workerEnv, ctx);
      await waitOnExecutionContext(ctx);
      return res;
    };
    expect((await call(env)).status).toBe(200); // warms this isolate's key and merchant memo
    const res = await call({ ...env, CACHE: cache });
    expect(res.status).toBe(200);
    const body = (await res.json()) as MethodsJson;
    expect(body).toMatchObject({ personalized: false, fallback_reason: "degraded" });
    expect(body.methods.map((m) => m.method_id)).not.toContain("ideal"); // still the context's default order
    expect(await verifyDecision(env.SIGNING_KEY, body.decision_id, shop.merchantId)).toMatchObject({ f: "degraded", a: null });
  });

  it("accepts client_secret with the secret key too", async () => {
    const s = await openSession(shop, { customer_id: "cus_paypal" });
    const res = await api(shop.secretKey, `/v1/personalize/methods?${qs({ client_secret: s.client_secret })}`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as MethodsJson).methods[0]!.method_id).toBe("paypal");
  });

  it("answers the session's decision with feedback the backend can send", async () => {
    const s = await openSession(shop, { customer_id: "cus_paypal" });
    const answer = (await (await browser(shop, `/v1/personalize/methods?${qs({ client_secret: s.client_secret })}`)).json()) as MethodsJson;
    const fb = await api(shop.secretKey, "/v1/personalize/feedback", {
      method: "POST",
      body: JSON.stringify({ customer_id: "cus_paypal", method_id: "paypal", decision_id: answer.decision_id }),
    });
    expect(fb.status).toBe(204);
  });

  it("falls back as §2 says for a customer who opted out", async () => {
    const s = await openSession(shop, { customer_id: "cus_optout2" });
    await api(shop.secretKey, "/v1/personalize/preferences", { method: "PUT", body: JSON.stringify({ customer_id: "cus_optout2", personalization_enabled: false }) });
    const body = (await (await browser(shop, `/v1/personalize/methods?${qs({ client_secret: s.client_secret })}`)).json()) as MethodsJson;
    expect(body).toMatchObject({ personalized: false, fallback_reason: "personalization_disabled" });
  });

  it("refuses a publishable key that names a customer with 403 KEY_NOT_ALLOWED, on /methods and /offers", async () => {
    await expectError(await browser(shop, "/v1/personalize/methods?customer_id=cus_paypal"), 403, "KEY_NOT_ALLOWED");
    await expectError(await browser(shop, "/v1/personalize/offers?customer_id=cus_paypal"), 403, "KEY_NOT_ALLOWED");
    const s = await openSession(shop, { customer_id: "cus_paypal" });
    await expectError(await browser(shop, `/v1/personalize/methods?${qs({ customer_id: "cus_other", client_secret: s.client_secret })}`), 403, "KEY_NOT_ALLOWED");
    // Whatever the id looks like: the same 403, never the schema's format hint (a 400 first).
    for (const query of ["customer_id=", "customer_id=bad%20id", `customer_id=${"c".repeat(129)}`, "customer_id=a&customer_id=b"]) {
      for (const route of ["methods", "offers"]) await expectError(await browser(shop, `/v1/personalize/${route}?${query}`), 403, "KEY_NOT_ALLOWED");
    }
  });

  it("answers one identical 401 INVALID_CLIENT_SECRET for unknown, expired, garbled and other merchants' secrets", async () => {
    const live = await openSession(shop, { customer_id: "cus_paypal" });
    const expired = await openSession(shop, { customer_id: "cus_paypal" });
    // KV keeps entries for at least 60 s: the stored expires_at must be checked by the code as well.
    const stored = JSON.parse((await env.CACHE.get(`session:${expired.id}`))!) as Record<string, unknown>;
    await env.CACHE.put(`session:${expired.id}`, JSON.stringify({ ...stored, expires_at: new Date(Date.now() - 1000).toISOString() }), { expirationTtl: 60 });
    const foreign = await openSession(other, { customer_id: "cus_paypal" });
    const [id, random] = live.client_secret.split("_secret_") as [string, string];
    const flipped = random.slice(0, -1) + (random.endsWith("A") ? "B" : "A");
    const unknown = `cs_${"0".repeat(24)}_secret_${random}`;

    const secrets = [unknown, expired.client_secret, foreign.client_secret, `${id}_secret_${flipped}`, "garbled", "", "cs_", `${live.client_secret}x`, "x".repeat(2000)];
    const messages = new Set<string>();
    for (const secret of secrets) {
      for (const path of ["/v1/personalize/methods", "/v1/personalize/offers"]) {
        const res = await browser(shop, `${path}?${qs({ client_secret: secret })}`);
        // The session's realm, not the API key's: the key was fine.
        expect(res.headers.get("WWW-Authenticate")).toBe('Bearer realm="tap2-checkout-session", error="invalid_token"');
        const body = await expectError(res, 401, "INVALID_CLIENT_SECRET");
        messages.add(body.error.message);
        expect(body.error.details).toBeUndefined();
      }
    }
    expect(messages.size).toBe(1);
    // The live one still works: nothing above was a lock-out.
    expect((await browser(shop, `/v1/personalize/methods?${qs({ client_secret: live.client_secret })}`)).status).toBe(200);
  });

  it("gives a publishable key without customer the guest order: default order, personalized false, fallback_reason guest", async () => {
    const res = await browser(shop, "/v1/personalize/methods?device_type=desktop&country=US");
    expect(res.status).toBe(200);
    const body = (await res.json()) as MethodsJson;
    expect(body).toMatchObject({ personalized: false, fallback_reason: "guest" });
    expect(body.decision_id).toMatch(/^dec_/);
    const fresh = (await (await api(shop.secretKey, "/v1/personalize/methods?customer_id=cus_brand_new&device_type=desktop&country=US")).json()) as MethodsJson;
    expect(fresh.fallback_reason).toBe("no_history");
    expect(body.methods.map((m) => m.method_id)).toEqual(fresh.methods.map((m) => m.method_id));
  });

  it("still requires customer_id (or client_secret) from a secret key", async () => {
    const err = await expectError(await api(shop.secretKey, "/v1/personalize/methods"), 400, "VALIDATION_ERROR");
    expect(err.error.details).toEqual([{ path: "customer_id", message: "Required" }]);
  });

  it("serves /offers through a session and for guests", async () => {
    const s = await openSession(shop, { customer_id: "cus_paypal" });
    const personal = await browser(shop, `/v1/personalize/offers?${qs({ client_secret: s.client_secret })}`);
    expect(personal.status).toBe(200);
    const pj = (await personal.json()) as { offers: { offer_id: string }[]; personalized: boolean };
    expect(pj.personalized).toBe(true);
    expect(pj.offers.map((o) => o.offer_id)).toEqual(["paypal_promo"]);

    const guest = await browser(shop, "/v1/personalize/offers");
    expect(guest.status).toBe(200);
    const gj = (await guest.json()) as { offers: { offer_id: string }[]; personalized: boolean; fallback_reason?: string };
    expect(gj).toMatchObject({ personalized: false, fallback_reason: "guest" });
    expect(gj.offers.map((o) => o.offer_id)).toEqual(["paypal_promo"]);
  });
});

describe("CORS and rate limits for browser traffic", () => {
  it("answers a preflight without a key for an allowed origin, exactly (never a wildcard)", async () => {
    const res = await api(null, "/v1/personalize/methods", {
      method: "OPTIONS",
      headers: { Origin: ORIGIN, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-api-key" },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe(ORIGIN);
    expect(res.headers.get("Access-Control-Allow-Headers")).toMatch(/X-API-Key/i);
    expect(res.headers.get("Access-Control-Allow-Methods")).toMatch(/GET/);
    expect(res.headers.get("Vary")).toMatch(/Origin/);
  });

  it("gives a preflight from an origin no merchant allows no CORS headers", async () => {
    const res = await api(null, `/v1/personalize/methods?api_key=${shop.publishableKey}`, {
      method: "OPTIONS",
      headers: { Origin: "https://evil.example", "Access-Control-Request-Method": "GET" },
    });
    expect(res.headers.get("Access-Control-Allow-Origin")).toBeNull();
    expect(res.headers.get("Access-Control-Allow-Methods")).toBeNull();
    expect(res.headers.get("Vary")).toMatch(/Origin/);
  });

  it("checks a preflight that names the key against that key's merchant", async () => {
    const stranger = await createMerchant({ allowed_origins: ["https://stranger.example"] });
    const res = await api(null, `/v1/personalize/methods?api_key=${shop.publishableKey}`, {
      method: "OPTIONS",
      headers: { Origin: "https://stranger.example", "Access-Control-Request-Method": "GET" },
    });
    expect(res.headers.get("Access-Control-Allow-Origin")).toBeNull();
    const own = await api(null, `/v1/personalize/methods?api_key=${stranger.publishableKey}`, {
      method: "OPTIONS",
      headers: { Origin: "https://stranger.example", "Access-Control-Request-Method": "GET" },
    });
    expect(own.headers.get("Access-Control-Allow-Origin")).toBe("https://stranger.example");
  });

  it("gives a publishable-key answer from an allowed origin the exact origin, Vary: Origin, and exposes X-Request-Id and RateLimit-*", async () => {
    const s = await openSession(shop, { customer_id: "cus_paypal" });
    const res = await browser(shop, `/v1/personalize/methods?${qs({ client_secret: s.client_secret })}`);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe(ORIGIN);
    expect(res.headers.get("Vary")).toMatch(/Origin/);
    const exposed = (res.headers.get("Access-Control-Expose-Headers") ?? "").split(/,\s*/).map((h) => h.toLowerCase());
    for (const h of ["x-request-id", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"]) expect(exposed).toContain(h);
    expect(res.headers.get("X-Request-Id")).toBeTruthy();
    expect(res.headers.get("RateLimit-Limit")).toBe("10000");
    expect(res.headers.get("RateLimit-Remaining")).toMatch(/^\d+$/);
    expect(res.headers.get("RateLimit-Reset")).toMatch(/^\d+$/);
  });

  it("lets the page read an error too (CORS headers on a 401 of an allowed origin)", async () => {
    const res = await browser(shop, `/v1/personalize/methods?${qs({ client_secret: "nope" })}`);
    expect(res.status).toBe(401);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe(ORIGIN);
  });

  it("refuses a publishable key from another origin with 403 ORIGIN_NOT_ALLOWED and no CORS headers", async () => {
    for (const origin of ["https://evil.example", "https://shop.example.evil.com", "http://shop.example", "null"]) {
      const res = await browser(shop, "/v1/personalize/methods", origin);
      await expectError(res, 403, "ORIGIN_NOT_ALLOWED");
      expect(res.headers.get("Access-Control-Allow-Origin")).toBeNull();
    }
  });

  it("counts browser traffic against the merchant's own bucket, shared with its backend", async () => {
    const small = await createMerchant({ rate_limit: { requests_per_hour: 1000, burst: 3 } });
    const first = await api(small.secretKey, "/v1/payment-methods");
    expect(first.headers.get("RateLimit-Remaining")).toBe("2");
    const page = await browser(small, "/v1/personalize/methods");
    expect(page.headers.get("RateLimit-Remaining")).toBe("1");
    expect(page.headers.get("RateLimit-Limit")).toBe("1000");
    await api(small.secretKey, "/v1/payment-methods");
    const limited = await browser(small, "/v1/personalize/methods");
    await expectError(limited, 429, "RATE_LIMITED");
    expect(limited.headers.get("Retry-After")).toMatch(/^\d+$/);
    expect(limited.headers.get("Access-Control-Allow-Origin")).toBe(ORIGIN);
  });
});
