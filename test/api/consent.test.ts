import { beforeAll, describe, expect, it } from "vitest";
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
  return (await res.json<{ entries: { consent_type: string; action: string; merchant_id: string; timestamp: string }[] }>()).entries;
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

  it("validates its query", async () => {
    const missing = await expectError(await api(shop.secretKey, "/v1/personalize/consent"), 400, "VALIDATION_ERROR");
    expect(missing.error.details!.map((d) => d.path)).toContain("customer_id");
    await expectError(await api(shop.secretKey, "/v1/personalize/consent?customer_id=a&extra=1"), 400, "VALIDATION_ERROR");
    await expectError(await api(shop.secretKey, "/v1/personalize/consent?customer_id=a&merchant_id=other"), 403, "MERCHANT_MISMATCH");
  });
});
