import { env, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { merchantSecurity } from "../../src/schemas/security";
import { API_MD_ROUTES, checkSamples, contractOf, type DocOperation } from "../helpers/contract";
import { admin, api, BASE, createKey, createMerchant, recordedFetch, type TestMerchant } from "../helpers/fixtures";
import { type Sample, samples } from "../helpers/samples";

/** Registered but not API: the demo shop's backend (src/routes/demo.ts), 404 outside ENVIRONMENT=development. */
const NOT_API = ["POST /demo/api/pay", "POST /demo/api/session"];
const SELF_DESCRIPTION = ["GET /docs", "GET /v1/openapi.json"];
const PUBLIC = ["GET /health", ...SELF_DESCRIPTION];

const { app, doc, operations } = contractOf();
const name = (op: DocOperation) => `${op.method} ${op.path}`;
const isAdmin = (op: DocOperation) => op.path.startsWith("/v1/admin/");
const isMerchant = (op: DocOperation) => op.path.startsWith("/v1/") && !isAdmin(op) && !PUBLIC.includes(name(op));
const codesOf = (op: DocOperation, status: number) => Object.keys(op.responses[String(status)]?.content?.["application/json"]?.examples ?? {});
const headersOf = (op: DocOperation, status: string) => Object.keys((op.responses[status] as { headers?: object }).headers ?? {});

describe("the OpenAPI document covers the app and API.md", () => {
  it("documents every route the app registers, and nothing else", () => {
    const registered = app.routes
      .filter((r) => r.method !== "ALL") // middleware
      .map((r) => `${r.method} ${r.path.replace(/:([A-Za-z_]+)/g, "{$1}")}`);
    expect(registered.filter((r) => NOT_API.includes(r)).sort()).toEqual(NOT_API);
    expect([...new Set(registered.filter((r) => !NOT_API.includes(r)))].sort()).toEqual(operations.map(name).sort());
  });

  it("states the bounds of every integer query parameter, as the body's integers do (amount 0 … 10^12, page limits)", () => {
    const params = Object.entries(doc.paths as Record<string, Record<string, { parameters?: { name: string; in: string; schema?: Record<string, unknown> }[] }>>)
      .flatMap(([path, ops]) => Object.entries(ops).flatMap(([method, op]) => (op.parameters ?? []).map((p) => ({ at: `${method} ${path} ${p.name}`, ...p }))))
      .filter((p) => p.in === "query" && p.schema?.type === "integer");
    expect(params.map((p) => p.at)).toEqual(expect.arrayContaining(["get /v1/personalize/methods amount", "get /v1/admin/merchants limit"]));
    for (const p of params) expect({ at: p.at, minimum: typeof p.schema?.minimum, maximum: typeof p.schema?.maximum }).toEqual({ at: p.at, minimum: "number", maximum: "number" });
    const amount = params.find((p) => p.at === "get /v1/personalize/methods amount");
    expect([amount?.schema?.minimum, amount?.schema?.maximum]).toEqual([0, 1e12]);
  });

  it("documents exactly the routes of API.md", () => {
    expect(operations.map(name).sort()).toEqual([...API_MD_ROUTES].sort());
  });

  it("serves that document at GET /v1/openapi.json without a key", async () => {
    const res = await SELF.fetch(`${BASE}/v1/openapi.json`);
    expect(res.status).toBe(200);
    // The same document but for its servers URL: the test config is development's (PUBLIC_BASE_URL ""),
    // where a request host that is not loopback is named as the relative "/" (openapi.test.ts).
    expect(await res.json()).toEqual({ ...doc, servers: [{ url: "/" }] });
  });

  it("declares the security schemes of API.md: X-API-Key, bearer and api_key query for merchants; bearer for admin", () => {
    const schemes = doc.components.securitySchemes as Record<string, Record<string, string>>;
    expect(schemes.ApiKeyHeader).toMatchObject({ type: "apiKey", in: "header", name: "X-API-Key" });
    expect(schemes.BearerKey).toMatchObject({ type: "http", scheme: "bearer" });
    expect(schemes.ApiKeyQuery).toMatchObject({ type: "apiKey", in: "query", name: "api_key" });
    expect(schemes.AdminToken).toMatchObject({ type: "http", scheme: "bearer" });
    for (const op of operations) {
      const expected = isAdmin(op) ? [{ AdminToken: [] }] : isMerchant(op) ? merchantSecurity : [];
      expect(op.security, name(op)).toEqual(expected);
    }
  });

  it("gives every operation an id, a success response and its error responses with the codes each can carry", () => {
    expect(new Set(operations.map((op) => op.operationId)).size).toBe(operations.length);
    for (const op of operations) {
      const statuses = Object.keys(op.responses).map(Number);
      expect(op.operationId, name(op)).toMatch(/^[a-z][A-Za-z]+$/);
      expect(statuses.some((s) => s >= 200 && s < 300), name(op)).toBe(true);
      expect(codesOf(op, 400), name(op)).toContain("VALIDATION_ERROR"); // unknown query parameters, on every route
      if (op.method !== "GET") {
        expect(codesOf(op, 400), name(op)).toContain("INVALID_JSON");
        expect(codesOf(op, 413), name(op)).toEqual(["PAYLOAD_TOO_LARGE"]);
        expect(codesOf(op, 415), name(op)).toEqual(["UNSUPPORTED_MEDIA_TYPE"]);
      }
      if (isAdmin(op)) {
        expect(codesOf(op, 401), name(op)).toEqual(["INVALID_ADMIN_TOKEN"]);
        expect(codesOf(op, 404), name(op)).toEqual(["NOT_FOUND"]); // also: ADMIN_TOKEN not set
      }
      if (isMerchant(op)) {
        const browser = op.path === "/v1/personalize/methods" || op.path === "/v1/personalize/offers";
        expect(codesOf(op, 401).sort(), name(op)).toEqual(["INVALID_API_KEY", "MISSING_API_KEY", ...(browser ? ["INVALID_CLIENT_SECRET"] : [])].sort());
        expect(codesOf(op, 403).sort(), name(op)).toEqual(["KEY_NOT_ALLOWED", "MERCHANT_MISMATCH", ...(browser ? ["ORIGIN_NOT_ALLOWED"] : [])].sort());
        expect(codesOf(op, 429), name(op)).toEqual(["RATE_LIMITED"]);
        expect(codesOf(op, 503), name(op)).toEqual(["UNAVAILABLE"]);
        expect(headersOf(op, "429"), name(op)).toContain("Retry-After");
        const ok = Object.keys(op.responses).find((s) => s.startsWith("2"))!;
        expect(headersOf(op, ok), name(op)).toEqual(expect.arrayContaining(["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"]));
      }
      if (op.responses["503"]) expect(headersOf(op, "503"), name(op)).toContain("Retry-After");
      for (const status of Object.keys(op.responses)) expect(headersOf(op, status), `${name(op)} ${status}`).toContain("X-Request-Id");
    }
  });
});

describe("a sample answer of every route validates against its documented schema", () => {
  let shop: TestMerchant;
  const json = (body: unknown, method = "POST"): RequestInit => ({ method, body: JSON.stringify(body) });
  const ok = async (res: Promise<Response>, status: number) => {
    const r = await res;
    expect(r.status, await r.clone().text()).toBe(status);
    return r;
  };

  beforeAll(async () => {
    shop = await createMerchant({
      holdout_percent: 10,
      features: { targeted_offers: true, cross_merchant: false },
      offers: [{ offer_id: "applepay_5off", method_id: "apple_pay", title: "5% back with Apple Pay", description: "On orders over $20", discount_type: "percent", discount_value: 5, min_amount: 2000 }],
    });
  });

  it("answers every route once with its success status (recorded by the shared fixtures)", async () => {
    const sk = shop.secretKey;
    const id = shop.merchantId;
    await ok(recordedFetch("/health"), 200);
    await ok(recordedFetch("/docs"), 200);
    await ok(recordedFetch("/v1/openapi.json"), 200);
    await ok(admin(`/v1/admin/merchants/${id}`), 200);
    await ok(admin(`/v1/admin/merchants?limit=1&cursor=${id.slice(0, -1)}`), 200);
    await ok(admin(`/v1/admin/merchants/${id}`, json({ name: "Renamed Shop", rate_limit: { requests_per_hour: 5000, burst: 500 } }, "PATCH")), 200);
    const extra = await createKey(id, "secret");
    await ok(admin(`/v1/admin/merchants/${id}/keys`), 200);
    await ok(admin(`/v1/admin/keys/${extra.key_id}`, { method: "DELETE" }), 204);
    const letter = await env.DB.prepare("INSERT INTO dead_letters (queue, message_id, body, attempts, received_at) VALUES ('feedback', 'msg_contract', '{}', 1, ?) RETURNING id")
      .bind(new Date().toISOString()).first<{ id: number }>();
    await ok(admin("/v1/admin/dead-letters?queue=feedback"), 200);
    await ok(admin("/v1/admin/dead-letters/redrive", json({ queue: "analytics", limit: 10 })), 200);
    await ok(admin(`/v1/admin/dead-letters/${letter!.id}`, { method: "DELETE" }), 204);
    await ok(admin(`/v1/admin/merchants/${id}/customers/export`, json({ customer_id: ".." })), 200);
    await ok(admin(`/v1/admin/merchants/${id}/customers/delete`, json({ customer_id: ".." })), 202);
    await ok(admin(`/v1/admin/merchants/${id}/customers/restore`, json({ customer_id: ".." })), 200);
    await ok(api(sk, "/v1/payment-methods"), 200);
    const context = "device_type=mobile&country=US&amount=4999&currency=USD&timezone=America/New_York";
    const methods = await (await ok(api(sk, `/v1/personalize/methods?customer_id=cus_123&${context}`), 200)).json<{ decision_id: string }>();
    await ok(api(sk, `/v1/personalize/offers?customer_id=cus_123&${context}`), 200);
    await ok(api(sk, "/v1/personalize/preferences", json({ customer_id: "cus_123", default_method: "apple_pay", favorite_methods: ["apple_pay", "visa"], excluded_methods: ["klarna"], cross_merchant_consent: true }, "PUT")), 200);
    await ok(api(sk, "/v1/personalize/preferences?customer_id=cus_123"), 200);
    await ok(api(sk, "/v1/personalize/consent?customer_id=cus_123"), 200);
    await ok(api(sk, "/v1/personalize/feedback", json({ customer_id: "cus_123", method_id: "apple_pay", amount: 4999, currency: "USD", device_type: "mobile", event_id: "order_1001", decision_id: methods.decision_id })), 204);
    await ok(api(sk, "/v1/personalize/feedback/batch", json({ events: [{ customer_id: "cus_123", method_id: "visa", event_id: "order_1002" }, { customer_id: "cus_456", method_id: "paypal" }] })), 202);
    const session = await (await ok(api(sk, "/v1/checkout/sessions", json({ customer_id: "cus_123", amount: 9900, currency: "USD", country: "US" })), 201)).json<{ client_secret: string }>();
    const page = { headers: { Origin: "https://shop.example" } };
    await ok(api(shop.publishableKey, `/v1/personalize/methods?client_secret=${encodeURIComponent(session.client_secret)}`, page), 200);
    await ok(api(shop.publishableKey, "/v1/personalize/offers", page), 200); // a guest
    await ok(api(sk, "/v1/personalize/customers/cus_123/export"), 200);
    await ok(api(sk, "/v1/personalize/customers/cus_123", { method: "DELETE" }), 202);
    await ok(api(sk, "/v1/personalize/customers/cus_123/restore", { method: "POST" }), 200);
    await ok(api(sk, "/v1/analytics/summary"), 200);
    await ok(api(sk, "/v1/analytics/timeseries?metric=conversion_rate&granularity=hour"), 200);
  });

  it("answers the gateway's errors with documented statuses and codes", async () => {
    const sk = shop.secretKey;
    await ok(api(null, "/v1/personalize/methods?customer_id=cus_123"), 401);
    await ok(api("tp2_sk_not_a_key", "/v1/analytics/summary"), 401);
    await ok(api(shop.publishableKey, "/v1/personalize/preferences?customer_id=cus_123"), 403);
    await ok(api(shop.publishableKey, "/v1/personalize/methods?client_secret=cs_garbled"), 401);
    await ok(api(sk, "/v1/personalize/preferences?customer_id=cus_123&colour=blue"), 400);
    await ok(api(sk, "/v1/personalize/feedback", { method: "POST", body: "customer_id=cus_123", headers: { "Content-Type": "text/plain" } }), 415);
    await ok(api(sk, "/v1/personalize/feedback/batch", { method: "POST", body: "x".repeat(70_000) }), 413);
    await ok(api(sk, "/v1/checkout/sessions", { method: "POST", body: "{not json" }), 400);
    await ok(api(sk, "/v1/personalize/customers/cus_never_deleted/restore", { method: "POST" }), 404);
    await ok(admin("/v1/admin/merchants", json({ merchant_id: shop.merchantId, name: "Again", tier: "starter", methods: ["visa"] })), 409);
    await ok(admin("/v1/admin/merchants/m_nobody"), 404);
    await ok(recordedFetch(`/v1/admin/merchants/${shop.merchantId}`, { headers: { Authorization: "Bearer wrong" } }), 401);
    await ok(api(sk, "/v1/personalize/methods", { method: "DELETE" }), 405);
    await ok(api(sk, "/v1/no-such-route"), 404);
  });

  it("every answer matched its documented response, and every operation has a validated success sample", async () => {
    const { problems, validated } = await checkSamples(samples);
    expect(problems).toEqual([]);
    const unsampled = operations.filter((op) => ![...validated].some((k) => k.startsWith(`${name(op)} 2`))).map(name);
    expect(unsampled).toEqual([]);
    for (const status of [400, 401, 403, 404, 409, 413, 415]) expect([...validated].some((k) => k.endsWith(` ${status}`)), String(status)).toBe(true);
  });
});

describe("the sample check catches drift", () => {
  const sample = (method: string, path: string, status: number, body: unknown, headers: Record<string, string> = {}): Sample => ({
    method, path, status,
    headers: new Headers({ "Content-Type": "application/json", "X-Request-Id": "req_test", ...headers }),
    body: Promise.resolve(body === undefined ? "" : JSON.stringify(body)),
  });
  const error = (code: string) => ({ error: { code, message: "m", request_id: "req_test", documentation_url: "u" } });

  it("reports undocumented fields, wrong types, undeclared statuses, unlisted codes, bodies on 204 and missing request ids", async () => {
    const { problems, validated } = await checkSamples([
      sample("GET", "/v1/personalize/consent?customer_id=c", 200, { entries: [], truncated: false, extra: 1 }),
      sample("GET", "/v1/personalize/consent?customer_id=c", 200, { entries: [{ consent_type: "personalization", action: "maybe", merchant_id: "m", timestamp: "2026-02-03T15:30:00Z" }], truncated: false }),
      sample("GET", "/v1/personalize/consent?customer_id=c", 409, error("CONFLICT")),
      sample("GET", "/v1/admin/merchants/m_1", 401, error("MISSING_API_KEY")),
      sample("DELETE", "/v1/admin/keys/key_1", 204, { revoked: true }),
      sample("GET", "/health", 200, { status: "ok" }, { "X-Request-Id": "" }),
      sample("GET", "/v1/no-such-route", 404, { message: "not found" }),
    ]);
    const expected = [
      /extra is not documented/,
      /entries\.0\.action: /,
      /does not document status 409/,
      /error code MISSING_API_KEY is not listed for 401/,
      /documented without a body/,
      /no X-Request-Id header/,
      /error body: error: /,
    ];
    for (const re of expected) expect(problems.some((p) => re.test(p)), String(re)).toBe(true);
    expect(validated.has("GET /v1/personalize/consent 200")).toBe(false);
  });
});
