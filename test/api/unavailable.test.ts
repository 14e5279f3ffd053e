import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { clearMemo } from "../../src/storage/cachedRead";
import { BASE, createMerchant, expectError } from "../helpers/fixtures";
import { patchD1 } from "../helpers/queryCount";

async function fetchWith(testEnv: typeof env, path: string, key: string): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`${BASE}${path}`, { headers: { "X-API-Key": key } }), testEnv, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

describe("when D1 fails", () => {
  it("a key that was never cached cannot be verified: 503 UNAVAILABLE while D1 is down, 500 while it has no tables (a deploy mistake, not worth a retry)", async () => {
    const m = await createMerchant();
    clearMemo();
    await env.CACHE.delete(`api_key:${await sha256(m.secretKey)}`);
    const restore = patchD1(() => () => Promise.reject(new Error("D1_ERROR: Network connection lost (injected)")));
    try {
      await expectError(await fetchWith(env, "/v1/payment-methods", m.secretKey), 503, "UNAVAILABLE");
    } finally {
      restore();
    }
    clearMemo();
    await expectError(await fetchWith({ ...env, DB: env.UNMIGRATED_DB }, "/v1/payment-methods", m.secretKey), 500, "INTERNAL_ERROR");
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
    // An unmigrated D1 still answers SELECT 1; its schema does not.
    expect((await expectError(res, 503, "UNAVAILABLE")).error.message).toBe("Health check failed: schema not ready");
    const ctx2 = createExecutionContext();
    const broken = await worker.fetch(new Request(`${BASE}/health?deep=1`), { ...env, DB: undefined as unknown as D1Database }, ctx2);
    await waitOnExecutionContext(ctx2);
    // The contract's one error body, the failing part named; no internals (the cause is logged).
    const body = await expectError(broken, 503, "UNAVAILABLE");
    expect(body.error.message).toBe("Health check failed: d1, schema not ready");
  });
});

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
