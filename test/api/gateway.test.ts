import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { createApp } from "../../src/app";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { clearMemo } from "../../src/storage/cachedRead";
import { merchantsAllowingOrigin } from "../../src/storage/merchants";
import { ADMIN_TOKEN, admin, api, BASE, createKey, createMerchant, expectError, uniqueMerchantId, type TestMerchant } from "../helpers/fixtures";

let m: TestMerchant;
beforeAll(async () => {
  m = await createMerchant();
});

describe("request ids", () => {
  it("reuses a well-formed incoming X-Request-Id, in the header and the error body", async () => {
    const res = await SELF.fetch(`${BASE}/v1/payment-methods`, { headers: { "X-Request-Id": "client-id_1.2" } });
    expect(res.headers.get("X-Request-Id")).toBe("client-id_1.2");
    const body = await expectError(res, 401, "MISSING_API_KEY");
    expect(body.error.request_id).toBe("client-id_1.2");
  });

  it("replaces a malformed or too long incoming id with a new req_ id", async () => {
    for (const bad of ["has space", "x".repeat(129), "semi;colon"]) {
      const res = await SELF.fetch(`${BASE}/health`, { headers: { "X-Request-Id": bad } });
      expect(res.headers.get("X-Request-Id")).toMatch(/^req_[A-Za-z0-9_-]+$/);
    }
  });

  it("gives every response a distinct id", async () => {
    const [a, b] = await Promise.all([SELF.fetch(`${BASE}/health`), SELF.fetch(`${BASE}/health`)]);
    expect(a.headers.get("X-Request-Id")).not.toBe(b.headers.get("X-Request-Id"));
  });
});

describe("errors", () => {
  it("answers unknown routes with 404 NOT_FOUND in the contract's body", async () => {
    const body = await expectError(await api(m.secretKey, "/v1/nope"), 404, "NOT_FOUND");
    expect(body.error.documentation_url).toBe("https://docs.tap2.com/errors#NOT_FOUND");
    expect(body.error.details).toBeUndefined();
    await expectError(await SELF.fetch(`${BASE}/nothing-here`), 404, "NOT_FOUND");
  });

  it("names a long path in a 404 or 405 message by its first 200 characters only", async () => {
    const long = `/v1/${"x".repeat(8_000)}`;
    const miss = await expectError(await api(m.secretKey, long), 404, "NOT_FOUND");
    expect(miss.error.message).toBe(`No route GET ${long.slice(0, 200)}…`);
    expect((await expectError(await api(m.secretKey, "/v1/nope"), 404, "NOT_FOUND")).error.message).toBe("No route GET /v1/nope");
    const noAdmin = await expectError(await SELF.fetch(`${BASE}/${"y".repeat(500)}`), 404, "NOT_FOUND");
    expect(noAdmin.error.message.length).toBeLessThan(230);
  });

  it("answers a known path with the wrong method with 405 and Allow", async () => {
    const res = await api(m.secretKey, "/v1/payment-methods", { method: "DELETE" });
    await expectError(res, 405, "METHOD_NOT_ALLOWED");
    expect(res.headers.get("Allow")).toContain("GET");
  });

  it("the request lines of a 404 and a 405 carry their error_code, like every other error, and are written at warn level", async () => {
    const logs = vi.spyOn(console, "warn");
    try {
      await expectError(await api(m.secretKey, "/v1/nope"), 404, "NOT_FOUND");
      await expectError(await api(m.secretKey, "/v1/personalize/customers/cus_x/export", { method: "PUT" }), 405, "METHOD_NOT_ALLOWED");
      await expectError(await SELF.fetch(`${BASE}/nothing-here`), 404, "NOT_FOUND");
      const lines = logs.mock.calls.map((args) => JSON.parse(String(args[0])) as Record<string, unknown>).filter((l) => l.status_code === 404 || l.status_code === 405);
      expect(lines.map((l) => [l.status_code, l.error_code])).toEqual([[404, "NOT_FOUND"], [405, "METHOD_NOT_ALLOWED"], [404, "NOT_FOUND"]]);
    } finally {
      logs.mockRestore();
    }
  });

  it("checks the route before the body: an unknown path is 404 and a wrong method 405, whatever body came with it", async () => {
    await expectError(await SELF.fetch(`${BASE}/nothing-here`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{" }), 404, "NOT_FOUND");
    await expectError(await api(m.secretKey, "/v1/nope", { method: "POST", body: "{" }), 404, "NOT_FOUND");
    await expectError(await SELF.fetch(`${BASE}/health`, { method: "POST", headers: { "Content-Type": "text/plain" }, body: "ping" }), 405, "METHOD_NOT_ALLOWED");
    await expectError(await admin("/v1/admin/merchants", { method: "DELETE", body: "{" }), 405, "METHOD_NOT_ALLOWED");
    const big = await api(m.secretKey, "/v1/payment-methods", { method: "DELETE", body: "x".repeat(70_000) });
    await expectError(big, 405, "METHOD_NOT_ALLOWED");
    expect(big.headers.get("Allow")).toContain("GET");
  });

  it("answers a plain OPTIONS (no preflight) on a known path with 204 and the Allow list a 405 names", async () => {
    const answers: [Response, string[]][] = [
      [await SELF.fetch(`${BASE}/health`, { method: "OPTIONS" }), ["GET", "HEAD", "OPTIONS"]],
      [await api(m.secretKey, "/v1/personalize/preferences", { method: "OPTIONS" }), ["GET", "HEAD", "OPTIONS", "PUT"]],
    ];
    for (const [res, allow] of answers) {
      expect(res.status).toBe(204);
      expect(res.headers.get("Allow")?.split(", ").sort()).toEqual(allow);
      expect(res.headers.get("X-Request-Id")).toBeTruthy();
    }
    // Without a key, /v1 stays 401 like any other request there: the API's shape is not told to anonymous callers.
    await expectError(await SELF.fetch(`${BASE}/v1/personalize/preferences`, { method: "OPTIONS" }), 401, "MISSING_API_KEY");
  });

  it("rejects bodies over 64 KiB with 413", async () => {
    const big = JSON.stringify({ type: "secret", pad: "x".repeat(70 * 1024) });
    await expectError(await admin(`/v1/admin/merchants/${m.merchantId}/keys`, { method: "POST", body: big }), 413, "PAYLOAD_TOO_LARGE");
  });

  it("stops reading a body without Content-Length (chunked) once it passes 64 KiB: 413, the rest never pulled", async () => {
    const chunk = new TextEncoder().encode("x".repeat(8 * 1024));
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += 1;
        if (pulled > 1_000) controller.close(); // 8 MB in all, if anyone read it to the end
        else controller.enqueue(chunk);
      },
    });
    const res = await SELF.fetch(`${BASE}/v1/personalize/feedback`, {
      method: "POST",
      headers: { "X-API-Key": m.secretKey, "Content-Type": "application/json" },
      body,
      duplex: "half",
    } as RequestInit);
    await expectError(res, 413, "PAYLOAD_TOO_LARGE");
    expect(pulled).toBeLessThan(100);
  });

  it("never reads the body of a GET (outside the 64 KiB limit): a public key could make the isolate parse any amount", async () => {
    // Browsers' fetch refuses a GET with a body, but the edge passes one through; the Request here
    // is a POST told to say GET, the way such a request reaches the app.
    const chunk = new TextEncoder().encode(" ".repeat(8 * 1024));
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"merchant_id": "m_someone_else", "pad": "'));
      },
      pull(controller) {
        pulled += 1;
        if (pulled > 1_000) {
          controller.enqueue(new TextEncoder().encode('"}'));
          controller.close(); // 8 MB in all, if anyone read it to the end
        } else controller.enqueue(chunk);
      },
    });
    const req = new Request(`${BASE}/v1/personalize/methods?api_key=${m.publishableKey}`, { method: "POST", headers: { "Content-Type": "application/json" }, body, duplex: "half" } as RequestInit);
    Object.defineProperty(req, "method", { value: "GET" });
    const ctx = createExecutionContext();
    const res = await createApp().fetch(req, env, ctx);
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(200);
    expect(pulled).toBeLessThan(100);
  });

  it("rejects non-JSON bodies with 415", async () => {
    const res = await admin(`/v1/admin/merchants/${m.merchantId}/keys`, {
      method: "POST",
      body: "type=secret",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
    await expectError(res, 415, "UNSUPPORTED_MEDIA_TYPE");
  });

  it("rejects a body with a Content-Encoding other than identity with 415 (found by test/api/fuzz.test.ts)", async () => {
    // A gzipped body was a 400 INVALID_JSON ("not valid JSON", though it was JSON, compressed), and
    // a plain JSON body labelled gzip (or any made-up coding) was accepted, read as if uncompressed.
    const json = JSON.stringify({ type: "secret" });
    const gzipped = new Uint8Array(await new Response(new Blob([json]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer());
    for (const [coding, body] of [["gzip", gzipped], ["gzip", json], ["br", json], ["bogus", json], ["identity, gzip", json]] as const) {
      const res = await admin(`/v1/admin/merchants/${m.merchantId}/keys`, { method: "POST", body, headers: { "Content-Type": "application/json", "Content-Encoding": coding } });
      expect(res.headers.get("Accept-Encoding"), coding).toBe("identity");
      const error = await expectError(res, 415, "UNSUPPORTED_MEDIA_TYPE");
      expect(error.error.message, coding).toContain("Content-Encoding");
    }
    const keys = await (await admin(`/v1/admin/merchants/${m.merchantId}/keys`)).json<{ keys: unknown[] }>();
    // identity (in any case), or an empty header, is the body as sent; a coding without a body has nothing to decode.
    for (const [coding, body] of [["identity", json], ["IDENTITY", json], ["", json], ["gzip", undefined]] as const) {
      const res = await admin(`/v1/admin/merchants/${m.merchantId}/keys`, { method: "POST", ...(body ? { body } : {}), headers: { "Content-Type": "application/json", "Content-Encoding": coding } });
      expect(`${coding} → ${res.status}`).toBe(`${coding} → ${body ? 201 : 400}`);
      await res.body?.cancel();
    }
    expect((await (await admin(`/v1/admin/merchants/${m.merchantId}/keys`)).json<{ keys: unknown[] }>()).keys.length).toBe(keys.keys.length + 3);
  });

  it("rejects malformed JSON with 400 INVALID_JSON", async () => {
    const res = await admin(`/v1/admin/merchants/${m.merchantId}/keys`, { method: "POST", body: '{"type": "secret",' });
    await expectError(res, 400, "INVALID_JSON");
  });

  it("rejects unknown query parameters with 400 VALIDATION_ERROR naming them", async () => {
    const body = await expectError(await api(m.secretKey, "/v1/payment-methods?colour=blue"), 400, "VALIDATION_ERROR");
    expect(body.error.details).toEqual([{ path: "colour", message: "Unknown field" }]);
  });

  it("answers JSON with charset utf-8", async () => {
    const res = await api(m.secretKey, "/v1/payment-methods");
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toMatch(/^application\/json; ?charset=utf-8$/i);
  });
});

describe("HEAD", () => {
  // HEAD answers go through SELF.fetch, not the sampling fixtures: the OpenAPI check reads every
  // sample's body, and a HEAD answer has none by definition.
  const head = (path: string, headers: Record<string, string> = {}) => SELF.fetch(`${BASE}${path}`, { method: "HEAD", headers });
  const sameAsGet = async (path: string, headers: Record<string, string>, status: number) => {
    const got = await SELF.fetch(`${BASE}${path}`, { headers });
    const res = await head(path, headers);
    expect(`${path} ${res.status}`).toBe(`${path} ${got.status}`);
    expect(res.status).toBe(status);
    expect(await res.text()).toBe("");
    expect(res.headers.get("X-Request-Id")).toBeTruthy();
    expect(res.headers.get("Content-Type")).toBe(got.headers.get("Content-Type"));
    expect(res.headers.get("Cache-Control")).toBe(got.headers.get("Cache-Control"));
    expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
    return res;
  };

  it("a publishable key may HEAD /methods and /offers as it may GET them: 200 with GET's headers and no body", async () => {
    for (const path of ["/v1/personalize/methods", "/v1/personalize/offers"]) {
      const res = await sameAsGet(path, { "X-API-Key": m.publishableKey }, 200);
      expect(res.headers.get("RateLimit-Limit")).toBeTruthy();
    }
  });

  it("a HEAD opens nothing its GET would not: the publishable key's 403s hold", async () => {
    await sameAsGet("/v1/payment-methods", { "X-API-Key": m.publishableKey }, 403);
    await sameAsGet("/v1/personalize/methods?customer_id=c1", { "X-API-Key": m.publishableKey }, 403); // a customer only through a session
    await sameAsGet("/v1/personalize/methods", { "X-API-Key": m.publishableKey, Origin: "https://elsewhere.example" }, 403); // ORIGIN_NOT_ALLOWED
    await sameAsGet("/v1/personalize/methods", {}, 401);
  });

  it("answers like GET with a secret key, the admin token and on the keyless routes", async () => {
    await sameAsGet("/v1/payment-methods", { "X-API-Key": m.secretKey }, 200);
    await sameAsGet("/v1/personalize/methods?customer_id=c1", { "X-API-Key": m.secretKey }, 200);
    await sameAsGet(`/v1/admin/merchants/${m.merchantId}`, { Authorization: `Bearer ${ADMIN_TOKEN}` }, 200);
    await sameAsGet(`/v1/admin/merchants/${m.merchantId}`, { Authorization: "Bearer wrong" }, 401);
    await sameAsGet("/health", {}, 200);
    await sameAsGet("/v1/openapi.json", {}, 200);
    await sameAsGet("/docs", {}, 200);
  });

  it("Allow names HEAD wherever GET is taken, and a HEAD where there is no GET is a 405", async () => {
    const res = await api(m.secretKey, "/v1/payment-methods", { method: "DELETE" });
    await expectError(res, 405, "METHOD_NOT_ALLOWED");
    expect(res.headers.get("Allow")?.split(", ").sort()).toEqual(["GET", "HEAD", "OPTIONS"]);
    const post = await head("/v1/personalize/feedback", { "X-API-Key": m.secretKey });
    expect(post.status).toBe(405);
    expect(post.headers.get("Allow")?.split(", ").sort()).toEqual(["OPTIONS", "POST"]);
  });
});

describe("response headers", () => {
  it("keeps every answer out of caches and unsniffed, errors and guest answers included", async () => {
    const answers = [
      await api(m.secretKey, "/v1/personalize/methods?customer_id=cus_cached"),
      await SELF.fetch(`${BASE}/v1/personalize/methods?api_key=${m.publishableKey}`),
      await api(m.secretKey, "/v1/personalize/preferences?customer_id=cus_cached"),
      await api(null, "/v1/personalize/methods?customer_id=cus_cached"),
      await api(m.secretKey, "/v1/nope"),
      await SELF.fetch(`${BASE}/health?deep=1`),
      await SELF.fetch(`${BASE}/v1/personalize/methods`, { method: "OPTIONS", headers: { Origin: "https://shop.example", "Access-Control-Request-Method": "GET" } }),
    ];
    for (const res of answers) {
      await res.arrayBuffer();
      expect(res.headers.get("Cache-Control"), res.url).toBe("no-store");
      expect(res.headers.get("X-Content-Type-Options"), res.url).toBe("nosniff");
      expect(res.headers.get("Vary"), res.url).toMatch(/Origin/);
    }
  });

  it("leaves the public OpenAPI document cacheable", async () => {
    const res = await SELF.fetch(`${BASE}/v1/openapi.json`);
    await res.arrayBuffer();
    expect(res.headers.get("Cache-Control")).toBe("public, max-age=300");
    expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
  });
});

describe("CORS", () => {
  it("answers a preflight without a key for an allowed origin", async () => {
    const res = await SELF.fetch(`${BASE}/v1/personalize/methods?merchant_id=${m.merchantId}`, {
      method: "OPTIONS",
      headers: { Origin: "https://shop.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-api-key" },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("https://shop.example");
    expect(res.headers.get("Access-Control-Allow-Headers")).toMatch(/X-API-Key/i);
    expect(res.headers.get("Vary")).toMatch(/Origin/);
  });

  it("gives no CORS headers to a preflight from an origin no merchant allows", async () => {
    const res = await SELF.fetch(`${BASE}/v1/personalize/methods`, {
      method: "OPTIONS",
      headers: { Origin: "https://evil.example", "Access-Control-Request-Method": "GET" },
    });
    expect(res.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });

  it("a preflight naming no merchant is allowed when some merchant allows the origin, as merchant writes leave it", async () => {
    const origin = `https://${m.merchantId.replace(/_/g, "-")}.shop.example`;
    const preflight = () =>
      SELF.fetch(`${BASE}/v1/personalize/methods`, { method: "OPTIONS", headers: { Origin: origin, "Access-Control-Request-Method": "GET" } });
    const shop = await createMerchant({ allowed_origins: ["https://other.example", origin] });
    const origins = async () =>
      (await env.DB.prepare("SELECT origin FROM merchant_origins WHERE merchant_id = ? ORDER BY origin").bind(shop.merchantId).all<{ origin: string }>()).results.map((r) => r.origin);
    expect(await origins()).toEqual(["https://other.example", origin].sort());
    expect((await preflight()).headers.get("Access-Control-Allow-Origin")).toBe(origin);

    const later = Date.now() + 61_000; // past this isolate's one-minute memo
    expect(await merchantsAllowingOrigin(env.DB, origin, later)).toEqual([shop.merchantId]);
    const patched = await admin(`/v1/admin/merchants/${shop.merchantId}`, { method: "PATCH", body: JSON.stringify({ allowed_origins: ["https://new.example"] }) });
    expect(patched.status).toBe(200);
    expect(await origins()).toEqual(["https://new.example"]);
    expect(await merchantsAllowingOrigin(env.DB, origin, later + 61_000)).toEqual([]);
    expect(await merchantsAllowingOrigin(env.DB, "https://new.example", later + 61_000)).toEqual([shop.merchantId]);
  });

  it("a refused origin is not remembered: a merchant allowing it a moment later, created or patched, is granted at once", async () => {
    const fresh = () => `https://${uniqueMerchantId("fresh").replace(/_/g, "-")}.example`;
    const preflight = (origin: string) =>
      SELF.fetch(`${BASE}/v1/personalize/methods`, { method: "OPTIONS", headers: { Origin: origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-api-key" } });
    const created = fresh();
    expect((await preflight(created)).headers.get("Access-Control-Allow-Origin")).toBeNull(); // nobody allows it yet
    await createMerchant({ allowed_origins: [created] });
    expect((await preflight(created)).headers.get("Access-Control-Allow-Origin")).toBe(created);

    const patched = fresh();
    const shop = await createMerchant();
    expect((await preflight(patched)).headers.get("Access-Control-Allow-Origin")).toBeNull();
    const patch = (origins: string[]) => admin(`/v1/admin/merchants/${shop.merchantId}`, { method: "PATCH", body: JSON.stringify({ allowed_origins: origins }) });
    expect((await patch([patched])).status).toBe(200);
    expect((await preflight(patched)).headers.get("Access-Control-Allow-Origin")).toBe(patched);
    // This isolate forgets a granted origin its merchant drops at once (others within the minute of their memo).
    expect((await patch([])).status).toBe(200);
    expect((await preflight(patched)).headers.get("Access-Control-Allow-Origin")).toBeNull();
  });

  it("an allowed origin written with capitals or a default port matches the Origin a browser sends", async () => {
    const shop = await createMerchant({ allowed_origins: ["https://Shop-Caps.Example:443", "http://plain.example:80"] });
    const stored = await (await admin(`/v1/admin/merchants/${shop.merchantId}`)).json<{ allowed_origins: string[] }>();
    expect(stored.allowed_origins).toEqual(["https://shop-caps.example", "http://plain.example"]);
    const res = await api(shop.publishableKey, "/v1/personalize/methods", { headers: { Origin: "https://shop-caps.example" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("https://shop-caps.example");
    const preflight = await SELF.fetch(`${BASE}/v1/personalize/methods?merchant_id=${shop.merchantId}`, {
      method: "OPTIONS",
      headers: { Origin: "http://plain.example", "Access-Control-Request-Method": "GET" },
    });
    expect(preflight.headers.get("Access-Control-Allow-Origin")).toBe("http://plain.example");
    // One no browser can send is refused, not stored to match nothing.
    const impossible = await admin(`/v1/admin/merchants/${shop.merchantId}`, { method: "PATCH", body: JSON.stringify({ allowed_origins: ["https://shop.example:99999"] }) });
    const body = await expectError(impossible, 400, "VALIDATION_ERROR");
    expect(body.error.details?.map((d) => d.path)).toContain("allowed_origins.0");
  });

  it("an IPv6 origin can be allowed (stored as a browser sends it) and matches on requests and preflights", async () => {
    const shop = await createMerchant({ allowed_origins: ["http://[0:0::1]:8787", "https://[2001:DB8::1]"] });
    const stored = await (await admin(`/v1/admin/merchants/${shop.merchantId}`)).json<{ allowed_origins: string[] }>();
    expect(stored.allowed_origins).toEqual(["http://[::1]:8787", "https://[2001:db8::1]"]);
    const res = await api(shop.publishableKey, "/v1/personalize/methods", { headers: { Origin: "http://[::1]:8787" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("http://[::1]:8787");
    const preflight = await SELF.fetch(`${BASE}/v1/personalize/methods`, { method: "OPTIONS", headers: { Origin: "https://[2001:db8::1]", "Access-Control-Request-Method": "GET" } });
    expect(preflight.headers.get("Access-Control-Allow-Origin")).toBe("https://[2001:db8::1]");
    const bad = await admin(`/v1/admin/merchants/${shop.merchantId}`, { method: "PATCH", body: JSON.stringify({ allowed_origins: ["http://[::g]"] }) });
    expect((await expectError(bad, 400, "VALIDATION_ERROR")).error.details?.map((d) => d.path)).toContain("allowed_origins.0");
  });

  it("matches origins of merchants saved before origins were stored canonically", async () => {
    const shop = await createMerchant();
    await env.DB.prepare("UPDATE merchants SET config = json_set(config, '$.allowed_origins', json('[\"https://Old.Example:443\"]')) WHERE id = ?").bind(shop.merchantId).run();
    clearMemo();
    const res = await api(shop.publishableKey, "/v1/personalize/methods", { headers: { Origin: "https://old.example" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("https://old.example");
  });

  it("grants preflights only on merchant routes: admin, health, the OpenAPI document and unknown paths answer for no merchant", async () => {
    const origin = "https://shop.example"; // allowed by m, and so by "some merchant"
    const preflight = (path: string) =>
      SELF.fetch(`${BASE}${path}`, { method: "OPTIONS", headers: { Origin: origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type" } });
    expect((await preflight("/v1/personalize/feedback")).headers.get("Access-Control-Allow-Origin")).toBe(origin);
    for (const path of ["/v1/admin/merchants", `/v1/admin/merchants/${m.merchantId}/keys`, "/health", "/v1/openapi.json", "/v1/nope", `/v1/nope?merchant_id=${m.merchantId}`]) {
      const res = await preflight(path);
      expect(res.status, path).toBe(204);
      expect(res.headers.get("Access-Control-Allow-Origin"), path).toBeNull();
    }
    // Nor is an unknown path's 401 readable, as its preflight is refused.
    const missing = await SELF.fetch(`${BASE}/v1/nope`, { headers: { Origin: origin } });
    await expectError(missing.clone(), 401, "MISSING_API_KEY");
    expect(missing.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });

  it("refuses a preflight whose api_key cannot be a key, instead of reading it as naming no merchant", async () => {
    const preflight = (query: string) =>
      SELF.fetch(`${BASE}/v1/personalize/methods${query}`, { method: "OPTIONS", headers: { Origin: "https://shop.example", "Access-Control-Request-Method": "GET" } });
    expect((await preflight(`?api_key=${m.publishableKey}`)).headers.get("Access-Control-Allow-Origin")).toBe("https://shop.example");
    for (const query of ["?api_key=not-a-key", "?api_key=tp2_pk_short", `?api_key=nope&merchant_id=${m.merchantId}`]) {
      expect((await preflight(query)).headers.get("Access-Control-Allow-Origin"), query).toBeNull();
    }
  });

  it("a preflight whose Origin is not an origin is refused without a storage lookup", async () => {
    const failing = { prepare: () => { throw new Error("D1 must not be asked"); } } as unknown as D1Database;
    for (const bad of ["null", "https://shop.example/path", "javascript:alert(1)", `https://${"a".repeat(300)}.example`, "https://shop.example\nX: y"]) {
      expect(await merchantsAllowingOrigin(failing, bad)).toEqual([]);
    }
    await expect(merchantsAllowingOrigin(failing, "https://fresh-origin.example")).rejects.toThrow("D1 must not be asked");
  });

  it("an origin lookup costs D1 one primary-key query per refused preflight, and one a minute per allowed origin", async () => {
    let queries = 0;
    const counting = { prepare: (sql: string) => (queries++, env.DB.prepare(sql)) } as unknown as D1Database;
    const refused = "https://nobody-allows-this.example";
    for (let i = 0; i < 3; i++) expect(await merchantsAllowingOrigin(counting, refused)).toEqual([]);
    expect(queries).toBe(3);
    const allowed = `https://${uniqueMerchantId("memo").replace(/_/g, "-")}.example`;
    const shop = await createMerchant({ allowed_origins: [allowed] });
    queries = 0;
    for (let i = 0; i < 3; i++) expect(await merchantsAllowingOrigin(counting, allowed)).toEqual([shop.merchantId]);
    expect(queries).toBe(1);
  });

  it("reflects only an exact allowed origin on real requests, never a wildcard, and exposes X-Request-Id", async () => {
    const ok = await api(m.secretKey, "/v1/payment-methods", { headers: { Origin: "https://shop.example" } });
    expect(ok.headers.get("Access-Control-Allow-Origin")).toBe("https://shop.example");
    expect(ok.headers.get("Access-Control-Expose-Headers")).toMatch(/X-Request-Id/);
    expect(ok.headers.get("Vary")).toMatch(/Origin/);
    const other = await api(m.secretKey, "/v1/payment-methods", { headers: { Origin: "https://shop.example.evil.com" } });
    expect(other.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });

  it("an unknown or revoked key's 401 is readable from an origin some merchant allows (the page learns why), not from others", async () => {
    const shop = await createMerchant({ allowed_origins: ["https://readable-401.example"] });
    const revoked = await createKey(shop.merchantId, "publishable");
    expect((await admin(`/v1/admin/keys/${revoked.key_id}`, { method: "DELETE" })).status).toBe(204);
    for (const key of ["tp2_pk_" + "Q".repeat(43), revoked.key]) {
      const allowed = await SELF.fetch(`${BASE}/v1/personalize/methods?api_key=${key}`, { headers: { Origin: "https://readable-401.example" } });
      await expectError(allowed.clone(), 401, "INVALID_API_KEY");
      expect(allowed.headers.get("Access-Control-Allow-Origin")).toBe("https://readable-401.example");
      expect(allowed.headers.get("Access-Control-Expose-Headers")).toMatch(/X-Request-Id/);
      const stranger = await SELF.fetch(`${BASE}/v1/personalize/methods?api_key=${key}`, { headers: { Origin: "https://nobody-allows.example" } });
      expect(stranger.status).toBe(401);
      expect(stranger.headers.get("Access-Control-Allow-Origin")).toBeNull();
    }
    // No other answer without a merchant is readable cross-origin: admin answers, health, a bad admin token.
    for (const res of [
      await admin("/v1/admin/merchants", { headers: { Origin: "https://readable-401.example" } }),
      await admin(`/v1/admin/merchants/${shop.merchantId}/keys`, { headers: { Origin: "https://readable-401.example" } }),
      await SELF.fetch(`${BASE}/v1/admin/merchants`, { headers: { Origin: "https://readable-401.example", Authorization: "Bearer wrong" } }),
      await SELF.fetch(`${BASE}/health`, { headers: { Origin: "https://readable-401.example" } }),
    ]) {
      await res.arrayBuffer();
      expect(res.headers.get("Access-Control-Allow-Origin"), res.url).toBeNull();
    }
    // A valid key from an origin its own merchant does not allow stays unreadable, whoever else allows it.
    const other = await createMerchant({ allowed_origins: ["https://elsewhere.example"] });
    const refused = await api(other.publishableKey, "/v1/personalize/methods", { headers: { Origin: "https://readable-401.example" } });
    expect(refused.status).toBe(403);
    expect(refused.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });

  it("refuses a publishable key used from an origin the merchant does not allow", async () => {
    const res = await api(m.publishableKey, "/v1/personalize/methods?customer_id=c1", { headers: { Origin: "https://evil.example" } });
    await expectError(res, 403, "ORIGIN_NOT_ALLOWED");
  });
});

describe("thrown bugs", () => {
  it("answer 500 INTERNAL_ERROR in the contract's body, without stack or internals", async () => {
    const { createApp } = await import("../../src/app");
    const { env, createExecutionContext } = await import("cloudflare:test");
    const app = createApp();
    app.get("/boom", () => {
      throw new TypeError("secret internals at /src/storage/thing.ts:42");
    });
    const res = await app.fetch(new Request(`${BASE}/boom`), env, createExecutionContext());
    const body = await expectError(res, 500, "INTERNAL_ERROR");
    const text = JSON.stringify(body);
    expect(text).not.toContain("secret internals");
    expect(text).not.toContain(".ts:");
  });
});

describe("405 only for paths that exist", () => {
  it("a path that only resembles /v1/openapi.json (the '.' is literal) is 404 with no Allow", async () => {
    const { api, createMerchant, expectError } = await import("../helpers/fixtures");
    const m = await createMerchant();
    const res = await api(m.secretKey, "/v1/openapiXjson");
    await expectError(res, 404, "NOT_FOUND");
    expect(res.headers.get("Allow")).toBeNull();
  });
});
