import { env, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/crypto/hash";
import { clearMemo } from "../../src/storage/cachedRead";
import { admin, api, BASE, createKey, createMerchant, expectError, type TestMerchant } from "../helpers/fixtures";
import { recordPayments, refOf, repeat } from "../helpers/usage";

/**
 * Attacker's-eye checks that cut across routes (README "Security at a glance"): what a browser may
 * do with an answer, and what one merchant's credentials can learn of another's data.
 */

let a: TestMerchant;
beforeAll(async () => {
  a = await createMerchant();
});

describe("answers in a browser", () => {
  it("no other site may frame the API reference page (people paste keys and the admin token into it), nor send its URL on", async () => {
    const res = await SELF.fetch(`${BASE}/docs`);
    expect(res.status).toBe(200);
    const csp = res.headers.get("Content-Security-Policy") ?? "";
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("base-uri 'none'");
    expect(csp).toContain("object-src 'none'");
    // The page must still load its pinned script: no script-src or default-src that would block it.
    expect(csp).not.toMatch(/default-src|script-src/);
    expect(res.headers.get("X-Frame-Options")).toBe("DENY");
    expect(res.headers.get("Referrer-Policy")).toBe("no-referrer");
  });

  it("every JSON answer, errors, preflights and admin answers included, loads nothing and is never framed", async () => {
    const answers = [
      await api(a.secretKey, "/v1/personalize/methods?customer_id=cus_1"),
      await api(a.publishableKey, "/v1/personalize/methods", { headers: { Origin: "https://shop.example" } }),
      await api(null, "/v1/personalize/methods"),
      await api(a.secretKey, "/v1/nope"),
      await admin(`/v1/admin/merchants/${a.merchantId}`),
      await SELF.fetch(`${BASE}/health`),
      await SELF.fetch(`${BASE}/v1/openapi.json`),
      await SELF.fetch(`${BASE}/v1/personalize/methods`, { method: "OPTIONS", headers: { Origin: "https://shop.example", "Access-Control-Request-Method": "GET" } }),
    ];
    for (const res of answers) {
      expect(res.headers.get("Content-Security-Policy"), res.url).toBe("default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
      expect(res.headers.get("X-Frame-Options"), res.url).toBe("DENY");
      expect(res.headers.get("Referrer-Policy"), res.url).toBe("no-referrer");
    }
  });
});

type Prefs = { default_method: string | null; favorite_methods: string[]; excluded_methods: string[] };
type Methods = { methods: { method_id: string }[]; personalized: boolean; fallback_reason?: string; decision_id: string };
type Export = { merchant_id: string; preferences: unknown; usage_events: unknown[]; usage_summary: unknown[]; consent_log: unknown[] };

const json = async <T>(res: Response): Promise<T> => {
  if (res.status !== 200) throw new Error(`${res.status} ${await res.text()}`);
  return res.json<T>();
};
const put = (m: TestMerchant, body: Record<string, unknown>) =>
  api(m.secretKey, "/v1/personalize/preferences", { method: "PUT", body: JSON.stringify(body) }).then((r) => json<unknown>(r));
const prefsOf = (m: TestMerchant, customer: string) => api(m.secretKey, `/v1/personalize/preferences?customer_id=${encodeURIComponent(customer)}`).then((r) => json<Prefs>(r));
const methodsOf = (m: TestMerchant, customer: string) => api(m.secretKey, `/v1/personalize/methods?customer_id=${encodeURIComponent(customer)}`).then((r) => json<Methods>(r));
const consentOf = (m: TestMerchant, customer: string) => api(m.secretKey, `/v1/personalize/consent?customer_id=${encodeURIComponent(customer)}`).then((r) => json<{ entries: unknown[] }>(r));
const exportOf = (m: TestMerchant, customer: string) => api(m.secretKey, `/v1/personalize/customers/${encodeURIComponent(customer)}/export`).then((r) => json<Export>(r));

describe("ids that extend one another through the separators of the id alphabet", () => {
  it("merchants base, base:c, base.c, base@c, base-c and customers cus, cus:1, cus:1: share no preferences, consent, history, export or cached profile", async () => {
    const base = `sec_${Date.now().toString(36)}`;
    const owner = await createMerchant({ merchant_id: base });
    const others = await Promise.all([":c", ".c", "@c", "-c", ":c_x"].map((s) => createMerchant({ merchant_id: base + s })));
    const customer = "cus:1";
    await recordPayments(base, customer, repeat(6, { method_id: "paypal" }));
    await put(owner, { customer_id: customer, default_method: "paypal", excluded_methods: ["klarna"], cross_merchant_consent: true });

    // The owner sees its customer (so every absence below is a real one).
    expect((await prefsOf(owner, customer)).default_method).toBe("paypal");
    const own = await methodsOf(owner, customer);
    expect(own.personalized).toBe(true);
    expect(own.methods.map((m) => m.method_id)).not.toContain("klarna");
    expect((await consentOf(owner, customer)).entries).toHaveLength(1);
    expect((await exportOf(owner, customer)).usage_events).toHaveLength(6);

    const untouched = async (m: TestMerchant, id: string) => {
      const label = `${m.merchantId} / ${id}`;
      expect(await prefsOf(m, id), label).toMatchObject({ default_method: null, favorite_methods: [], excluded_methods: [] });
      const answer = await methodsOf(m, id);
      expect(answer.fallback_reason, label).toBe("no_history");
      expect(answer.methods.map((x) => x.method_id), label).toContain("klarna");
      expect((await consentOf(m, id)).entries, label).toEqual([]);
      expect(await exportOf(m, id), label).toMatchObject({ merchant_id: m.merchantId, preferences: null, usage_events: [], usage_summary: [], consent_log: [] });
    };
    for (const m of others) await untouched(m, customer);
    for (const id of ["cus", "cus:", "cus:1:", "cus:1.", "cus:10", "1"]) await untouched(owner, id);

    // Each merchant's cached profile is its own KV entry; only the owner's holds the customer's history.
    const ref = await refOf(customer);
    const cached = async (merchantId: string) => JSON.parse((await env.CACHE.get(`profile:${merchantId}:${ref}`))!) as { stats: unknown[]; preferences: unknown };
    expect((await cached(base)).stats.length).toBeGreaterThan(0);
    for (const m of others) expect(await cached(m.merchantId), m.merchantId).toMatchObject({ stats: [], preferences: null });

    // A decision id of one is refused by the others, for the same customer id.
    for (const m of others) {
      const res = await api(m.secretKey, "/v1/personalize/feedback", { method: "POST", body: JSON.stringify({ customer_id: customer, method_id: "paypal", decision_id: own.decision_id }) });
      const body = await expectError(res, 400, "VALIDATION_ERROR");
      expect(body.error.details?.[0]?.path).toBe("decision_id");
    }
  });
});

describe("cross-merchant consent shares method counts, nothing else", () => {
  it("with consent at both and the feature on, B's order uses A's payments, but B's preferences, consent log, export and answers show nothing of A", async () => {
    const features = { targeted_offers: false, cross_merchant: true };
    const shopA = await createMerchant({ features });
    const shopB = await createMerchant({ features });
    const customer = "xm_sec_1";
    await recordPayments(shopA.merchantId, customer, repeat(8, { method_id: "google_pay", amount: 987_654, currency: "EUR", country: "DE", device_type: "tablet" }));
    await put(shopA, { customer_id: customer, default_method: "google_pay", favorite_methods: ["google_pay"], excluded_methods: ["klarna"], cross_merchant_consent: true });
    await put(shopB, { customer_id: customer, cross_merchant_consent: true });

    // The counts do cross (so the absences below are not those of a feature that is off).
    const answer = await methodsOf(shopB, customer);
    expect(answer.personalized).toBe(true);
    expect(answer.methods[0]!.method_id).toBe("google_pay");
    // A's exclusion and stated preferences are A's: B still offers klarna and has no default or favourites.
    expect(answer.methods.map((m) => m.method_id)).toContain("klarna");
    expect(await prefsOf(shopB, customer)).toMatchObject({ default_method: null, favorite_methods: [], excluded_methods: [] });

    const consent = await consentOf(shopB, customer);
    expect(consent.entries).toEqual([expect.objectContaining({ consent_type: "cross_merchant", action: "granted", merchant_id: shopB.merchantId })]);
    const exported = await exportOf(shopB, customer);
    expect(exported).toMatchObject({ usage_events: [], usage_summary: [] });

    // Nothing B can read names A, its amounts or its contexts.
    const texts = [
      JSON.stringify(answer),
      JSON.stringify(exported),
      JSON.stringify(consent),
      await api(shopB.secretKey, `/v1/personalize/offers?customer_id=${customer}`).then((r) => r.text()),
      await api(shopB.secretKey, "/v1/analytics/summary").then((r) => r.text()),
    ];
    for (const text of texts) {
      expect(text).not.toContain(shopA.merchantId);
      expect(text).not.toContain("987654");
      expect(text).not.toContain("tablet");
    }
  });
});

describe("a revoked key elsewhere (API.md §1: it stops working within 60 s at most)", () => {
  const cacheKeyOf = async (key: string) => `api_key:${await sha256Hex(key)}`;

  it("another location's cached copy from before the revocation is trusted only while younger than 45 s (src/storage/apiKeys.ts: KV entries 45 s, memory 10 s)", async () => {
    const key = await createKey(a.merchantId, "secret");
    expect((await api(key.key, "/v1/payment-methods")).status).toBe(200);
    const cached = JSON.parse((await env.CACHE.get(await cacheKeyOf(key.key)))!) as { v: { revoked: boolean }; at: number };
    expect(cached.v.revoked).toBe(false);
    expect((await admin(`/v1/admin/keys/${key.key_id}`, { method: "DELETE" })).status).toBe(204);
    await expectError(await api(key.key, "/v1/payment-methods"), 401, "INVALID_API_KEY");

    // KV takes up to 60 s to forget the entry everywhere: another location may still read the copy
    // written before the revocation. Within 45 s of its writing it is trusted (a lag the bound allows) …
    const copy = async (ageMs: number) => {
      clearMemo(); // another isolate: nothing remembered
      await env.CACHE.put(await cacheKeyOf(key.key), JSON.stringify({ ...cached, at: Date.now() - ageMs }), { expirationTtl: 3600 });
    };
    await copy(40_000);
    expect((await api(key.key, "/v1/payment-methods")).status).toBe(200);
    // … past that D1 is asked again, and says revoked.
    await copy(46_000);
    await expectError(await api(key.key, "/v1/payment-methods"), 401, "INVALID_API_KEY");
    // A copy that says revoked is never overruled by time.
    clearMemo();
    await expectError(await api(key.key, "/v1/payment-methods"), 401, "INVALID_API_KEY");
  });
});

describe("CORS", () => {
  it("never allows credentials, never reflects an unlisted origin, and no merchant can list the opaque origin null", async () => {
    const allowed = "https://shop.example";
    const answers = [
      await SELF.fetch(`${BASE}/v1/personalize/methods`, { method: "OPTIONS", headers: { Origin: allowed, "Access-Control-Request-Method": "GET" } }),
      await api(a.publishableKey, "/v1/personalize/methods", { headers: { Origin: allowed } }),
      await api(a.secretKey, "/v1/personalize/methods?customer_id=c", { headers: { Origin: allowed } }),
    ];
    for (const res of answers) {
      expect(res.headers.get("Access-Control-Allow-Origin")).toBe(allowed);
      expect(res.headers.get("Access-Control-Allow-Credentials")).toBeNull();
    }
    for (const origin of ["null", "https://evil.example", `${allowed}.evil.example`]) {
      const pre = await SELF.fetch(`${BASE}/v1/personalize/methods?merchant_id=${a.merchantId}`, { method: "OPTIONS", headers: { Origin: origin, "Access-Control-Request-Method": "GET" } });
      expect(pre.headers.get("Access-Control-Allow-Origin"), origin).toBeNull();
      const secret = await api(a.secretKey, "/v1/personalize/methods?customer_id=c", { headers: { Origin: origin } });
      expect(secret.status).toBe(200); // a backend's call, whatever Origin it sends …
      expect(secret.headers.get("Access-Control-Allow-Origin"), origin).toBeNull(); // … is never readable by that page
    }
    const res = await admin(`/v1/admin/merchants/${a.merchantId}`, { method: "PATCH", body: JSON.stringify({ allowed_origins: ["null"] }) });
    await expectError(res, 400, "VALIDATION_ERROR");
  });
});

describe("idempotency keys are per merchant", () => {
  /** Polls D1 until the consumer (real local queue) has stored `count` events of the merchant. */
  async function storedEvents(merchantId: string, count: number): Promise<{ event_id: string; method_id: string }[]> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const { results } = await env.DB.prepare("SELECT event_id, method_id FROM usage_events WHERE merchant_id = ? ORDER BY event_id").bind(merchantId).all<{ event_id: string; method_id: string }>();
      if (results.length >= count || Date.now() > deadline) return results;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  it("a merchant sending another's event_id or Idempotency-Key first never suppresses the other's events, nor replays its session", async () => {
    const first = await createMerchant();
    const second = await createMerchant();
    const send = (m: TestMerchant, method_id: string) =>
      Promise.all([
        api(m.secretKey, "/v1/personalize/feedback", { method: "POST", body: JSON.stringify({ customer_id: "cus_idem", method_id, event_id: "order_1" }) }),
        api(m.secretKey, "/v1/personalize/feedback", { method: "POST", headers: { "Idempotency-Key": "order_2" }, body: JSON.stringify({ customer_id: "cus_idem", method_id }) }),
        api(m.secretKey, "/v1/personalize/feedback/batch", {
          method: "POST",
          headers: { "Idempotency-Key": "batch_1" },
          body: JSON.stringify({ events: [{ customer_id: "cus_idem", method_id, amount: 100, currency: "EUR" }, { customer_id: "cus_idem", method_id, amount: 200, currency: "EUR" }] }),
        }),
      ]);
    for (const res of await send(first, "visa")) expect(res.status).toBeLessThan(300);
    const firsts = await storedEvents(first.merchantId, 4);
    expect(firsts.map((e) => e.method_id)).toEqual(["visa", "visa", "visa", "visa"]);
    // The same requests from the other merchant: the same ids (the batch's are derived from the key
    // and the content, which are the same) …
    for (const res of await send(second, "visa")) expect(res.status).toBeLessThan(300);
    const seconds = await storedEvents(second.merchantId, 4);
    // … stored for each merchant as its own events.
    expect(seconds).toEqual(firsts);
    expect(firsts.map((e) => e.event_id)).toContain("order_1");
    expect(await storedEvents(first.merchantId, 4)).toEqual(firsts);

    const open = (m: TestMerchant) =>
      api(m.secretKey, "/v1/checkout/sessions", { method: "POST", headers: { "Idempotency-Key": "order_1" }, body: JSON.stringify({ customer_id: "cus_idem" }) }).then(async (r) => {
        expect(r.status).toBe(201);
        return { replayed: r.headers.get("Idempotent-Replayed"), ...(await r.json<{ id: string; client_secret: string; merchant_id: string }>()) };
      });
    const mine = await open(first);
    const theirs = await open(second);
    expect(theirs).toMatchObject({ replayed: null, merchant_id: second.merchantId });
    expect(theirs.id).not.toBe(mine.id);
    expect(theirs.client_secret).not.toBe(mine.client_secret);
    expect((await open(first)).client_secret).toBe(mine.client_secret); // the key still replays for its own merchant
  });
});
