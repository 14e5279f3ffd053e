import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { refOf } from "../helpers/customerData";
import { api, createMerchant, expectError, type TestMerchant } from "../helpers/fixtures";

let shop: TestMerchant;
let other: TestMerchant;
beforeAll(async () => {
  shop = await createMerchant();
  other = await createMerchant();
});

const put = (m: TestMerchant, body: Record<string, unknown>) => api(m.secretKey, "/v1/personalize/preferences", { method: "PUT", body: JSON.stringify(body) });
const consent = async (m: TestMerchant, customerId: string) => {
  const res = await api(m.secretKey, `/v1/personalize/consent?customer_id=${customerId}`);
  expect(res.status).toBe(200);
  const body = await res.json<{ entries: { consent_type: string; action: string; merchant_id: string; timestamp: string }[]; truncated: boolean }>();
  expect(body.truncated).toBe(false);
  return body.entries;
};

describe("GET /v1/personalize/consent", () => {
  it("is empty for an unknown customer", async () => {
    expect(await consent(shop, "nobody")).toEqual([]);
  });

  it("lists the changes oldest first, with this merchant's rows only", async () => {
    await put(shop, { customer_id: "cl_1", cross_merchant_consent: true });
    await put(shop, { customer_id: "cl_1", personalization_enabled: false });
    await put(other, { customer_id: "cl_1", cross_merchant_consent: true });
    await put(shop, { customer_id: "cl_1", cross_merchant_consent: false });
    const entries = await consent(shop, "cl_1");
    expect(entries.map((e) => [e.consent_type, e.action, e.merchant_id])).toEqual([
      ["cross_merchant", "granted", shop.merchantId],
      ["personalization", "revoked", shop.merchantId],
      ["cross_merchant", "revoked", shop.merchantId],
    ]);
    for (const e of entries) expect(e.timestamp).toMatch(/^\d{4}-\d{2}-\d{2}T.*Z$/);
    expect([...entries].map((e) => e.timestamp)).toEqual([...entries].map((e) => e.timestamp).sort());
    expect(await consent(other, "cl_1")).toHaveLength(1);
  });

  it("shows the newest 1,000 changes, oldest first, and says when older ones were left out", async () => {
    const ref = await refOf("cl_long");
    await env.DB.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1003)
       INSERT INTO consent_log (merchant_id, customer_ref, consent_type, action, created_at)
       SELECT ?1, ?2, 'cross_merchant', CASE i % 2 WHEN 1 THEN 'granted' ELSE 'revoked' END, strftime('%Y-%m-%dT%H:%M:%fZ', '2026-01-01', '+' || i || ' minutes') FROM n`,
    ).bind(shop.merchantId, ref).run();
    const res = await api(shop.secretKey, "/v1/personalize/consent?customer_id=cl_long");
    const body = await res.json<{ entries: { action: string; timestamp: string }[]; truncated: boolean }>();
    expect(body.truncated).toBe(true);
    expect(body.entries).toHaveLength(1000);
    expect(body.entries[0]!.timestamp).toBe("2026-01-01T00:04:00.000Z"); // entries 1-3 are the ones left out
    expect(body.entries.at(-1)).toEqual(expect.objectContaining({ action: "granted", timestamp: "2026-01-01T16:43:00.000Z" })); // the newest, 1003
  });

  it("validates its query", async () => {
    const missing = await expectError(await api(shop.secretKey, "/v1/personalize/consent"), 400, "VALIDATION_ERROR");
    expect(missing.error.details!.map((d) => d.path)).toContain("customer_id");
    await expectError(await api(shop.secretKey, "/v1/personalize/consent?customer_id=a&extra=1"), 400, "VALIDATION_ERROR");
    await expectError(await api(shop.secretKey, "/v1/personalize/consent?customer_id=a&merchant_id=other"), 403, "MERCHANT_MISMATCH");
  });
});
