import { env, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { admin, api, BASE, createKey, createMerchant, expectError, type TestMerchant, uniqueMerchantId } from "../helpers/fixtures";

let a: TestMerchant;
let b: TestMerchant;
beforeAll(async () => {
  a = await createMerchant();
  b = await createMerchant();
});

describe("API keys", () => {
  it("401 MISSING_API_KEY without a key", async () => {
    await expectError(await api(null, "/v1/payment-methods"), 401, "MISSING_API_KEY");
  });

  it("401 INVALID_API_KEY for malformed and unknown keys", async () => {
    await expectError(await api("nope", "/v1/payment-methods"), 401, "INVALID_API_KEY");
    await expectError(await api("tp2_sk_" + "A".repeat(43), "/v1/payment-methods"), 401, "INVALID_API_KEY");
    await expectError(await api("tp2_xx_" + "A".repeat(43), "/v1/payment-methods"), 401, "INVALID_API_KEY");
  });

  it("every 401 names its scheme in WWW-Authenticate (RFC 9110), with invalid_token when a credential was sent", async () => {
    expect((await api(null, "/v1/payment-methods")).headers.get("WWW-Authenticate")).toBe('Bearer realm="tap2"');
    expect((await api("nope", "/v1/payment-methods")).headers.get("WWW-Authenticate")).toBe('Bearer realm="tap2", error="invalid_token"');
    const adminRes = await SELF.fetch(`${BASE}/v1/admin/merchants/m_x`, { headers: { Authorization: "Bearer wrong" } });
    expect(adminRes.status).toBe(401);
    expect(adminRes.headers.get("WWW-Authenticate")).toBe('Bearer realm="tap2-admin", error="invalid_token"');
    const noToken = await SELF.fetch(`${BASE}/v1/admin/merchants/m_x`);
    expect(noToken.status).toBe(401);
    expect(noToken.headers.get("WWW-Authenticate")).toBe('Bearer realm="tap2-admin"');
    const basic = await SELF.fetch(`${BASE}/v1/admin/merchants/m_x`, { headers: { Authorization: "Basic dXNlcjpwYXNz" } });
    expect(basic.headers.get("WWW-Authenticate")).toBe('Bearer realm="tap2-admin", error="invalid_token"');
    expect((await api(a.secretKey, "/v1/payment-methods")).headers.get("WWW-Authenticate")).toBeNull();
  });

  it("accepts the key in X-API-Key, Authorization: Bearer and ?api_key=", async () => {
    expect((await api(a.secretKey, "/v1/payment-methods")).status).toBe(200);
    expect((await SELF.fetch(`${BASE}/v1/payment-methods`, { headers: { Authorization: `Bearer ${a.secretKey}` } })).status).toBe(200);
    expect((await SELF.fetch(`${BASE}/v1/payment-methods?api_key=${a.secretKey}`)).status).toBe(200);
  });

  it("a key beside an Authorization header of another scheme is used wherever it is (the other credential is not ours)", async () => {
    const basic = { Authorization: "Basic dXNlcjpwYXNz" };
    expect((await SELF.fetch(`${BASE}/v1/payment-methods?api_key=${a.secretKey}`, { headers: basic })).status).toBe(200);
    expect((await SELF.fetch(`${BASE}/v1/payment-methods`, { headers: { ...basic, "X-API-Key": a.secretKey } })).status).toBe(200);
    const gateway = { Authorization: "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", "X-API-Key": a.secretKey };
    expect((await SELF.fetch(`${BASE}/v1/payment-methods`, { headers: gateway })).status).toBe(200);
    // Alone, it is presented and refused.
    await expectError(await SELF.fetch(`${BASE}/v1/payment-methods`, { headers: basic }), 401, "INVALID_API_KEY");
  });

  it("two different keys in one request are refused (401), whichever places carry them; the same key twice is fine", async () => {
    const pairs: Record<string, string>[] = [
      { "X-API-Key": a.secretKey, Authorization: `Bearer ${b.secretKey}` },
      { "X-API-Key": b.secretKey, Authorization: `Bearer ${a.secretKey}` },
      { "X-API-Key": a.secretKey, Authorization: a.publishableKey },
    ];
    for (const headers of pairs) {
      const res = await SELF.fetch(`${BASE}/v1/payment-methods`, { headers });
      const body = await expectError(res, 401, "INVALID_API_KEY");
      expect(JSON.stringify(body)).toContain("Two different API keys");
    }
    await expectError(await SELF.fetch(`${BASE}/v1/payment-methods?api_key=${b.secretKey}`, { headers: { "X-API-Key": a.secretKey } }), 401, "INVALID_API_KEY");
    expect((await SELF.fetch(`${BASE}/v1/payment-methods?api_key=${a.secretKey}`, { headers: { "X-API-Key": a.secretKey, Authorization: `Bearer ${a.secretKey}` } })).status).toBe(200);
    // A repeated ?api_key= is two keys too, in either order (not the first one authenticating, and
    // spending its merchant's token, before the query schema refuses the array).
    for (const query of [`api_key=${a.secretKey}&api_key=${b.secretKey}`, `api_key=${b.secretKey}&api_key=${a.secretKey}`, `api_key=${a.secretKey}&api_key=tp2_sk_junk`]) {
      const res = await SELF.fetch(`${BASE}/v1/payment-methods?${query}`);
      await expectError(res, 401, "INVALID_API_KEY");
      expect(res.headers.get("RateLimit-Remaining"), query).toBeNull();
    }
    await expectError(await SELF.fetch(`${BASE}/v1/payment-methods?api_key=${a.secretKey}&api_key=${b.secretKey}`, { headers: { "X-API-Key": a.secretKey } }), 401, "INVALID_API_KEY");
    // The same key twice is a repeated parameter (400), answered before the limiter spends a token.
    const twice = await SELF.fetch(`${BASE}/v1/payment-methods?api_key=${a.secretKey}&api_key=${a.secretKey}`);
    await expectError(twice, 400, "VALIDATION_ERROR");
    expect(twice.headers.get("RateLimit-Remaining")).toBeNull();
    // A malformed key beside a good one is not ignored: X-API-Key, a tp2_ Bearer, two X-API-Key headers joined.
    const malformed: Record<string, string>[] = [{ "X-API-Key": "tp2_sk_short" }, { Authorization: "Bearer tp2_sk_short" }, { "X-API-Key": `${a.secretKey}, ${b.secretKey}` }];
    for (const headers of malformed) {
      await expectError(await SELF.fetch(`${BASE}/v1/payment-methods?api_key=${a.secretKey}`, { headers }), 401, "INVALID_API_KEY");
    }
  });

  it("keys carry at least 128 bits of randomness and the right prefixes", async () => {
    expect(a.secretKey).toMatch(/^tp2_sk_[A-Za-z0-9_-]{43}$/);
    expect(a.publishableKey).toMatch(/^tp2_pk_[A-Za-z0-9_-]{43}$/);
    expect(a.secretKey).not.toBe(b.secretKey);
  });

  it("a revoked key stops working", async () => {
    const key = await createKey(a.merchantId, "secret");
    expect((await api(key.key, "/v1/payment-methods")).status).toBe(200);
    expect((await admin(`/v1/admin/keys/${key.key_id}`, { method: "DELETE" })).status).toBe(204);
    await expectError(await api(key.key, "/v1/payment-methods"), 401, "INVALID_API_KEY");
  });

  it("stores only hashes: the key list shows prefixes, never a key or hash", async () => {
    const res = await admin(`/v1/admin/merchants/${a.merchantId}/keys`);
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(text).not.toContain(a.secretKey);
    expect(text).not.toMatch(/[0-9a-f]{64}/);
    const body = JSON.parse(text) as { keys: { prefix: string; type: string }[] };
    expect(body.keys.map((k) => k.prefix)).toContain(a.secretKey.slice(0, 11));
  });
});

describe("publishable keys", () => {
  it("open only GET /methods and /offers", async () => {
    await expectError(await api(a.publishableKey, "/v1/payment-methods"), 403, "KEY_NOT_ALLOWED");
    await expectError(await api(a.publishableKey, "/v1/personalize/preferences?customer_id=c1"), 403, "KEY_NOT_ALLOWED");
    await expectError(
      await api(a.publishableKey, "/v1/personalize/feedback", { method: "POST", body: JSON.stringify({ customer_id: "c1", method_id: "visa" }) }),
      403,
      "KEY_NOT_ALLOWED",
    );
  });
});

describe("what keyless and unknown-key requests may cost", () => {
  const kvKeys = async () => (await env.CACHE.list()).keys.map((k) => k.name);

  it("an unknown key or a preflight naming any merchant writes nothing to KV", async () => {
    const before = new Set(await kvKeys());
    for (let i = 0; i < 3; i++) await expectError(await api(`tp2_sk_${crypto.randomUUID().replaceAll("-", "").padEnd(43, "A")}`, "/v1/payment-methods"), 401, "INVALID_API_KEY");
    for (const id of ["m_not_there", "attacker chosen\nstring", "x".repeat(300)]) {
      const res = await SELF.fetch(`${BASE}/v1/personalize/methods?merchant_id=${encodeURIComponent(id)}`, {
        method: "OPTIONS",
        headers: { Origin: "https://evil.example", "Access-Control-Request-Method": "GET" },
      });
      expect(res.headers.get("Access-Control-Allow-Origin")).toBeNull();
      await res.body?.cancel();
    }
    expect((await kvKeys()).filter((k) => !before.has(k))).toEqual([]);
  });

  it("a merchant named by a preflight before it existed works at once when created", async () => {
    const id = uniqueMerchantId("m_early");
    const pre = await SELF.fetch(`${BASE}/v1/personalize/methods?merchant_id=${id}`, { method: "OPTIONS", headers: { Origin: "https://shop.example", "Access-Control-Request-Method": "GET" } });
    await pre.body?.cancel();
    const m = await createMerchant({ merchant_id: id });
    const res = await api(m.secretKey, "/v1/payment-methods");
    expect(res.status).toBe(200);
    await res.body?.cancel();
  });
});

describe("tenant isolation", () => {
  it("403 MERCHANT_MISMATCH when merchant_id names another merchant, in query or body", async () => {
    await expectError(await api(a.secretKey, `/v1/payment-methods?merchant_id=${b.merchantId}`), 403, "MERCHANT_MISMATCH");
    await expectError(
      await api(a.secretKey, "/v1/personalize/preferences", {
        method: "PUT",
        body: JSON.stringify({ customer_id: "c1", merchant_id: b.merchantId, default_method: "visa" }),
      }),
      403,
      "MERCHANT_MISMATCH",
    );
    await expectError(
      await api(a.secretKey, "/v1/personalize/feedback/batch", {
        method: "POST",
        body: JSON.stringify({ events: [{ customer_id: "c1", merchant_id: a.merchantId, method_id: "visa" }, { customer_id: "c1", merchant_id: b.merchantId, method_id: "visa" }] }),
      }),
      403,
      "MERCHANT_MISMATCH",
    );
  });

  it("checks the body's merchant_id whatever the case of the JSON Content-Type", async () => {
    for (const type of ["Application/JSON", "APPLICATION/VND.TAP2+JSON", "application/json; charset=UTF-8"]) {
      const res = await api(a.secretKey, "/v1/personalize/preferences", {
        method: "PUT",
        headers: { "Content-Type": type },
        body: JSON.stringify({ customer_id: "c1", merchant_id: b.merchantId, default_method: "visa" }),
      });
      await expectError(res, 403, "MERCHANT_MISMATCH");
    }
  });

  it("a key of merchant A cannot write merchant B's data: B's preferences stay as they were", async () => {
    const put = (key: string, merchantId: string, body: Record<string, unknown>) =>
      api(key, "/v1/personalize/preferences", { method: "PUT", body: JSON.stringify({ customer_id: "shared_c", merchant_id: merchantId, ...body }) });
    expect((await put(b.secretKey, b.merchantId, { default_method: "visa" })).status).toBe(200);
    await expectError(await put(a.secretKey, b.merchantId, { default_method: "paypal", personalization_enabled: false }), 403, "MERCHANT_MISMATCH");
    await expectError(await api(a.secretKey, `/v1/personalize/preferences?customer_id=shared_c&merchant_id=${b.merchantId}`), 403, "MERCHANT_MISMATCH");
    const seen = await (await api(b.secretKey, "/v1/personalize/preferences?customer_id=shared_c")).json<{ default_method: string; personalization_enabled: boolean }>();
    expect(seen).toMatchObject({ default_method: "visa", personalization_enabled: true });
    // The same customer id at A is A's own customer: A's write lands at A, never at B.
    expect((await put(a.secretKey, a.merchantId, { default_method: "paypal" })).status).toBe(200);
    const stillB = await (await api(b.secretKey, "/v1/personalize/preferences?customer_id=shared_c")).json<{ default_method: string }>();
    expect(stillB.default_method).toBe("visa");
  });

  it("accepts the key's own merchant_id", async () => {
    expect((await api(a.secretKey, `/v1/payment-methods?merchant_id=${a.merchantId}`)).status).toBe(200);
  });

  it("a malformed merchant_id is a validation error, not a mismatch", async () => {
    const body = await expectError(await api(a.secretKey, "/v1/payment-methods?merchant_id=bad%20id!"), 400, "VALIDATION_ERROR");
    expect(body.error.details?.[0]?.path).toBe("merchant_id");
  });

  it("each key sees its own merchant's catalog flags", async () => {
    const c = await createMerchant({ methods: ["pix", "boleto"] });
    const res = await api(c.secretKey, "/v1/payment-methods");
    const body = await res.json<{ methods: { method_id: string; enabled: boolean }[] }>();
    expect(body.methods.filter((x) => x.enabled).map((x) => x.method_id).sort()).toEqual(["boleto", "pix"]);
  });
});
