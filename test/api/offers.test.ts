import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../../src/index";
import { api, BASE, createMerchant, expectError, type TestMerchant } from "../helpers/fixtures";
import { recordPayments, refOf, repeat } from "../helpers/usage";

interface OffersBody {
  offers: { offer_id: string; method_id: string; title: string; description: string; discount_type: string; discount_value: number; relevance: number }[];
  personalized: boolean;
  fallback_reason?: string;
}

const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
const OFFERS = [
  { offer_id: "visa_fixed", method_id: "visa", title: "5 off with Visa", discount_type: "fixed", discount_value: 500 },
  { offer_id: "applepay_5off", method_id: "apple_pay", title: "5% back with Apple Pay", description: "Instant", discount_type: "percent", discount_value: 5 },
  { offer_id: "ideal_nl", method_id: "ideal", title: "3% with iDEAL", discount_type: "percent", discount_value: 3, countries: ["NL"] },
  { offer_id: "klarna_big", method_id: "klarna", title: "10 off large baskets", discount_type: "fixed", discount_value: 1000, min_amount: 20000 },
  { offer_id: "paypal_usd", method_id: "paypal", title: "2% with PayPal", discount_type: "percent", discount_value: 2, currency: "USD" },
  { offer_id: "gpay_mobile", method_id: "google_pay", title: "4% with Google Pay", discount_type: "percent", discount_value: 4, device_types: ["mobile"] },
  { offer_id: "visa_expired", method_id: "visa", title: "old", discount_type: "percent", discount_value: 10, ends_at: iso(Date.now() - DAY) },
  { offer_id: "visa_future", method_id: "visa", title: "soon", discount_type: "percent", discount_value: 10, starts_at: iso(Date.now() + DAY) },
  { offer_id: "mc_window", method_id: "mastercard", title: "now", discount_type: "percent", discount_value: 1, starts_at: iso(Date.now() - DAY), ends_at: iso(Date.now() + DAY) },
];

let shop: TestMerchant;
beforeAll(async () => {
  shop = await createMerchant({ features: { targeted_offers: true, cross_merchant: false }, offers: OFFERS });
});

async function offers(m: TestMerchant, params: Record<string, string>): Promise<OffersBody> {
  const res = await api(m.secretKey, `/v1/personalize/offers?${new URLSearchParams(params)}`);
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return JSON.parse(text) as OffersBody;
}
const ids = (b: OffersBody) => b.offers.map((o) => o.offer_id);

describe("GET /v1/personalize/offers", () => {
  it("answers offers_disabled when targeted offers are off", async () => {
    const off = await createMerchant({ offers: OFFERS });
    expect(await offers(off, { customer_id: "c" })).toEqual({ offers: [], personalized: false, fallback_reason: "offers_disabled" });
  });

  it("applies the key, customer and session rules before answering offers_disabled", async () => {
    const off = await createMerchant({ offers: OFFERS });
    const missing = await expectError(await api(off.secretKey, "/v1/personalize/offers"), 400, "VALIDATION_ERROR");
    expect(missing.error.details).toEqual([{ path: "customer_id", message: "Required" }]);
    await expectError(await api(off.publishableKey, "/v1/personalize/offers?client_secret=cs_garbage_secret_x", { headers: { Origin: "https://shop.example" } }), 401, "INVALID_CLIENT_SECRET");
    await expectError(await api(off.publishableKey, "/v1/personalize/offers?customer_id=c", { headers: { Origin: "https://shop.example" } }), 403, "KEY_NOT_ALLOWED");
    const guest = await api(off.publishableKey, "/v1/personalize/offers", { headers: { Origin: "https://shop.example" } });
    expect(await guest.json()).toEqual({ offers: [], personalized: false, fallback_reason: "offers_disabled" });
  });

  it("ranks a guest's offers by popularity, not by the discount", async () => {
    // visa is the default order's first method (most probable for a guest); klarna's discount is far larger.
    const m = await createMerchant({
      features: { targeted_offers: true, cross_merchant: false },
      offers: [
        { offer_id: "klarna_huge", method_id: "klarna", title: "50 off", discount_type: "fixed", discount_value: 5000 },
        { offer_id: "visa_small", method_id: "visa", title: "1 off", discount_type: "fixed", discount_value: 100 },
      ],
    });
    const guest = await api(m.publishableKey, "/v1/personalize/offers?country=US", { headers: { Origin: "https://shop.example" } });
    const body = (await guest.json()) as OffersBody;
    expect(body.fallback_reason).toBe("guest");
    expect(ids(body)).toEqual(["visa_small", "klarna_huge"]);
    expect(body.offers[0]!.relevance).toBeGreaterThan(body.offers[1]!.relevance);
    // A known customer's offers are ranked by expected value: the large discount wins there.
    expect(ids(await offers(m, { customer_id: "o_ev", country: "US" }))).toEqual(["klarna_huge", "visa_small"]);
  });

  it("shows only active offers whose method is available and whose conditions match", async () => {
    const body = await offers(shop, { customer_id: "o_new", country: "NL", currency: "EUR", amount: "10000", device_type: "desktop" });
    expect(body.personalized).toBe(false);
    expect(body.fallback_reason).toBe("no_history");
    expect(ids(body).sort()).toEqual(["applepay_5off", "ideal_nl", "mc_window", "visa_fixed"]);
    const us = await offers(shop, { customer_id: "o_new", country: "US", currency: "USD", amount: "30000", device_type: "mobile" });
    expect(ids(us).sort()).toEqual(["applepay_5off", "gpay_mobile", "klarna_big", "mc_window", "paypal_usd", "visa_fixed"]);
    // Unknown context filters nothing but time and availability.
    expect(ids(await offers(shop, { customer_id: "o_new" })).sort()).toEqual(["applepay_5off", "gpay_mobile", "ideal_nl", "klarna_big", "mc_window", "paypal_usd", "visa_fixed"]);
  });

  it("never shows an offer of an excluded method", async () => {
    await api(shop.secretKey, "/v1/personalize/preferences", { method: "PUT", body: JSON.stringify({ customer_id: "o_excl", excluded_methods: ["apple_pay"] }) });
    expect(ids(await offers(shop, { customer_id: "o_excl" }))).not.toContain("applepay_5off");
  });

  it("ranks by expected value to this customer: likelihood of the method × the offer's value", async () => {
    await recordPayments(shop.merchantId, "o_wallet", repeat(6, { method_id: "apple_pay", device_type: "mobile" }));
    const body = await offers(shop, { customer_id: "o_wallet", device_type: "mobile", country: "NL", currency: "EUR", amount: "10000" });
    expect(body.personalized).toBe(true);
    expect(ids(body)[0]).toBe("applepay_5off");
    expect(body.offers[0]).toMatchObject({ method_id: "apple_pay", title: "5% back with Apple Pay", description: "Instant", discount_type: "percent", discount_value: 5 });
    // relevance is the method's confidence in /methods for the same request.
    const methods = await (await api(shop.secretKey, "/v1/personalize/methods?customer_id=o_wallet&device_type=mobile&country=NL&currency=EUR&amount=10000")).json<{ methods: { method_id: string; confidence: number }[] }>();
    expect(body.offers[0]!.relevance).toBe(methods.methods.find((m) => m.method_id === "apple_pay")!.confidence);
    for (let i = 1; i < body.offers.length; i++) {
      const value = (o: OffersBody["offers"][number]) => o.relevance * (o.discount_type === "fixed" ? o.discount_value : (10000 * o.discount_value) / 100);
      expect(value(body.offers[i - 1]!)).toBeGreaterThanOrEqual(value(body.offers[i]!));
    }

    await recordPayments(shop.merchantId, "o_visa", repeat(6, { method_id: "visa", device_type: "desktop" }));
    expect(ids(await offers(shop, { customer_id: "o_visa", device_type: "desktop", country: "NL", currency: "EUR", amount: "10000" }))[0]).toBe("visa_fixed");
  });

  it("answers 200 degraded when the profile cannot be read (D1 batch wrapped to throw, as in methods.test.ts)", async () => {
    const failing = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "batch") return () => { throw new Error("D1 unavailable (test)"); };
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const call = async (workerEnv: typeof env) => {
      const ctx = createExecutionContext();
      const res = await worker.fetch(new Request(`${BASE}/v1/personalize/offers?customer_id=o_deg&country=US`, { headers: { "X-API-Key": shop.secretKey } }), workerEnv, ctx);
      await waitOnExecutionContext(ctx);
      return res;
    };
    expect((await call(env)).status).toBe(200); // warms key and merchant caches of this isolate
    await env.CACHE.delete(`profile:${shop.merchantId}:${await refOf("o_deg")}`);
    const res = await call({ ...env, DB: failing });
    expect(res.status).toBe(200);
    const body = await res.json<OffersBody>();
    expect(body).toMatchObject({ personalized: false, fallback_reason: "degraded" });
    expect(ids(body)).not.toContain("ideal_nl");
  });

  it("validates the query like /methods", async () => {
    const body = await expectError(await api(shop.secretKey, "/v1/personalize/offers?customer_id=c&amount=ten"), 400, "VALIDATION_ERROR");
    expect(body.error.details!.map((d) => d.path)).toContain("amount");
    await expectError(await api(shop.secretKey, "/v1/personalize/offers"), 400, "VALIDATION_ERROR");
    await expectError(await api(shop.secretKey, "/v1/personalize/offers?customer_id=c&merchant_id=other"), 403, "MERCHANT_MISMATCH");
  });
});
