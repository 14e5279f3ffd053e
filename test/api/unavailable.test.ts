import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { clearMemo } from "../../src/storage/cachedRead";
import { BASE, createMerchant, expectError } from "../helpers/fixtures";

async function fetchWith(testEnv: typeof env, path: string, key: string): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`${BASE}${path}`, { headers: { "X-API-Key": key } }), testEnv, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

describe("when D1 fails", () => {
  it("a key that was never cached cannot be verified: 503 UNAVAILABLE", async () => {
    const m = await createMerchant();
    clearMemo();
    await env.CACHE.delete(`api_key:${await sha256(m.secretKey)}`);
    const res = await fetchWith({ ...env, DB: env.UNMIGRATED_DB }, "/v1/payment-methods", m.secretKey);
    await expectError(res, 503, "UNAVAILABLE");
  });

  it("a key and merchant cached earlier still open the API", async () => {
    const m = await createMerchant();
    expect((await fetchWith(env, "/v1/payment-methods", m.secretKey)).status).toBe(200);
    clearMemo(); // only KV remains
    const res = await fetchWith({ ...env, DB: env.UNMIGRATED_DB }, "/v1/payment-methods", m.secretKey);
    expect(res.status).toBe(200);
  });

  it("GET /health?deep=1 names the failing part", async () => {
    const ctx = createExecutionContext();
    const res = await worker.fetch(new Request(`${BASE}/health?deep=1`), { ...env, DB: env.UNMIGRATED_DB }, ctx);
    await waitOnExecutionContext(ctx);
    // An unmigrated D1 still answers SELECT 1, so deep health stays ok; a missing binding does not.
    expect(res.status).toBe(200);
    const ctx2 = createExecutionContext();
    const broken = await worker.fetch(new Request(`${BASE}/health?deep=1`), { ...env, DB: undefined as unknown as D1Database }, ctx2);
    await waitOnExecutionContext(ctx2);
    // The contract's one error body, the failing part named; no internals (the cause is logged).
    const body = await expectError(broken, 503, "UNAVAILABLE");
    expect(body.error.message).toBe("Health check failed: d1 unavailable");
  });
});

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
