import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { sha256Hex } from "../../src/crypto/hash";
import { DEMO_BASKET, DEMO_MERCHANT_ID, DEMO_PUBLISHABLE_KEY, DEMO_SECRET_KEY } from "../../src/routes/demo";
import { refOf } from "../helpers/customerData";
import { admin, BASE, expectError } from "../helpers/fixtures";

function demo(path: string, body: unknown): Promise<Response> {
  return SELF.fetch(`${BASE}${path}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) });
}

async function waitForEvents(customerRef: string, count: number, timeoutMs = 10_000): Promise<{ method_id: string; decision_id: string | null; amount: number }[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { results } = await env.DB.prepare("SELECT method_id, decision_id, amount FROM usage_events WHERE merchant_id = ? AND customer_ref = ?")
      .bind(DEMO_MERCHANT_ID, customerRef)
      .all<{ method_id: string; decision_id: string | null; amount: number }>();
    if (results.length >= count || Date.now() > until) return results;
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  // The demo merchant as scripts/dev.mjs seeds it: created through the admin API, keys put in place.
  const res = await admin("/v1/admin/merchants", {
    method: "POST",
    body: JSON.stringify({ merchant_id: DEMO_MERCHANT_ID, name: "Demo Shop", tier: "growth", methods: ["visa", "mastercard", "apple_pay", "paypal", "klarna", "ideal"], allowed_origins: ["http://localhost:8787"] }),
  });
  expect(res.status).toBe(201);
  const now = new Date().toISOString();
  for (const [id, key, type] of [["key_demo_secret", DEMO_SECRET_KEY, "secret"], ["key_demo_publishable", DEMO_PUBLISHABLE_KEY, "publishable"]] as const) {
    await env.DB.prepare("INSERT INTO api_keys (key_id, merchant_id, key_hash, type, prefix, created_at) VALUES (?, ?, ?, ?, ?, ?)")
      .bind(id, DEMO_MERCHANT_ID, await sha256Hex(key), type, key.slice(0, 11), now)
      .run();
  }
});

describe("demo backend (ENVIRONMENT=development)", () => {
  it("opens a checkout session for a demo customer with the demo basket, handing the page only public values", async () => {
    const res = await demo("/demo/api/session", { customer: "cus_alice" });
    expect(res.status).toBe(201);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ merchant_id: DEMO_MERCHANT_ID, publishable_key: DEMO_PUBLISHABLE_KEY, amount: DEMO_BASKET.amount, currency: DEMO_BASKET.currency, api_base: BASE });
    expect(JSON.stringify(body)).not.toContain(DEMO_SECRET_KEY);
    const id = /^(cs_[0-9a-f]{24})_secret_/.exec(body.client_secret as string)![1]!;
    const stored = JSON.parse((await env.CACHE.get(`session:${id}`))!) as Record<string, unknown>;
    expect(stored).toMatchObject({ merchant_id: DEMO_MERCHANT_ID, customer_ref: await refOf("cus_alice"), amount: 6490, currency: "EUR", country: "NL" });
  });

  it("sends a payment as feedback through the real feedback path (queue → D1), with the decision_id", async () => {
    const session = (await (await demo("/demo/api/session", { customer: "cus_demo_payer" })).json()) as { client_secret: string };
    // The decision the page got for that session.
    const methods = await SELF.fetch(`${BASE}/v1/personalize/methods?client_secret=${encodeURIComponent(session.client_secret)}`, { headers: { "X-API-Key": DEMO_SECRET_KEY } });
    expect(methods.status).toBe(200);
    const decisionId = ((await methods.json()) as { decision_id: string }).decision_id;
    expect(decisionId).toMatch(/^dec_/);

    const res = await demo("/demo/api/pay", { customer: "cus_demo_payer", method_id: "klarna", decision_id: decisionId });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ paid: true, method_id: "klarna" });
    const rows = await waitForEvents(await refOf("cus_demo_payer"), 1);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ method_id: "klarna", amount: DEMO_BASKET.amount, decision_id: decisionId });
  });

  it("relays the API's validation of the payment (method not enabled, forged decision)", async () => {
    // The relayed body is the API's own error, under the id of the answer the page gets (API.md §1).
    const res = await demo("/demo/api/pay", { customer: "cus_alice", method_id: "pix" });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; request_id: string; details: { path: string }[] } };
    expect(body.error.code).toBe("VALIDATION_ERROR");
    expect(body.error.request_id).toBe(res.headers.get("X-Request-Id"));
    expect(body.error.details.map((d) => d.path)).toContain("method_id");
    const forged = await demo("/demo/api/pay", { customer: "cus_alice", method_id: "visa", decision_id: "dec_forged.abc" });
    expect(forged.status).toBe(400);
    expect(((await forged.json()) as { error: { details: { path: string }[] } }).error.details.map((d) => d.path)).toContain("decision_id");
  });

  it("validates its own bodies", async () => {
    const missing = await expectError(await demo("/demo/api/session", {}), 400, "VALIDATION_ERROR");
    expect(missing.error.details).toEqual([{ path: "customer", message: "Required" }]);
    await expectError(await demo("/demo/api/session", { customer: "bad id!" }), 400, "VALIDATION_ERROR");
    await expectError(await demo("/demo/api/session", { customer: "cus_alice", extra: 1 }), 400, "VALIDATION_ERROR");
    await expectError(await demo("/demo/api/pay", { customer: "cus_alice", method_id: "Not A Method" }), 400, "VALIDATION_ERROR");
    await expectError(await demo("/demo/api/session", "{oops"), 400, "INVALID_JSON");
  });
});

describe("demo backend outside development", () => {
  const app = createApp();

  async function fetchAs(environment: string, path: string, init: RequestInit = {}): Promise<Response> {
    const ctx = createExecutionContext();
    const res = await app.fetch(new Request(`${BASE}${path}`, init), { ...env, ENVIRONMENT: environment }, ctx);
    await waitOnExecutionContext(ctx);
    return res;
  }

  it.each(["staging", "production"])("does not exist in %s: every /demo path is a plain 404", async (environment) => {
    const post = { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ customer: "cus_alice" }) };
    for (const path of ["/demo/api/session", "/demo/api/pay"]) {
      const body = await expectError(await fetchAs(environment, path, post), 404, "NOT_FOUND");
      expect(body.error.message).toBe(`No route POST ${path}`);
    }
    await expectError(await fetchAs(environment, "/demo/"), 404, "NOT_FOUND");
    // Any method, any body: no 405 naming the route's methods, no body check's 400 or 415.
    await expectError(await fetchAs(environment, "/demo/api/session"), 404, "NOT_FOUND");
    await expectError(await fetchAs(environment, "/demo/api/pay", { method: "OPTIONS" }), 404, "NOT_FOUND");
    await expectError(await fetchAs(environment, "/demo/api/pay", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{" }), 404, "NOT_FOUND");
    await expectError(await fetchAs(environment, "/demo/api/pay", { method: "POST", headers: { "Content-Type": "text/plain" }, body: "x" }), 404, "NOT_FOUND");
    // The same request in development is served.
    expect((await fetchAs("development", "/demo/api/session", post)).status).toBe(201);
  });
});
