import { describe, expect, it } from "vitest";
import { assignArm, holdoutPosition } from "../../src/personalization/holdout";
import { isOfferEligible, offerValue, rankOffers } from "../../src/personalization/offers";
import { mergePreferences, preferenceProblems } from "../../src/personalization/preferences";
import type { Offer } from "../../src/schemas/merchant";

describe("holdout", () => {
  it("is deterministic per (merchant, customer) and independent across merchants", () => {
    expect(holdoutPosition("m1", "c_abc")).toBe(holdoutPosition("m1", "c_abc"));
    const positions = Array.from({ length: 2000 }, (_, i) => holdoutPosition("m1", `c_${i}`));
    const held = positions.filter((p) => p < 10).length;
    expect(held).toBeGreaterThan(150);
    expect(held).toBeLessThan(250);
    const sameAcross = Array.from({ length: 200 }, (_, i) => assignArm("m1", `c_${i}`, 50) === assignArm("m2", `c_${i}`, 50)).filter(Boolean).length;
    expect(sameAcross).toBeLessThan(150);
    expect(assignArm("m1", "c_1", 0)).toBe("treatment");
  });

  it("is the same function in every isolate and every release: pinned positions (a per-isolate salt, or a changed hash, would move customers between arms mid-experiment)", () => {
    expect([holdoutPosition("m1", "c_abc"), holdoutPosition("m_shop", "ref_0123"), holdoutPosition("m2", "c_abc")]).toEqual([29.17, 79.65, 42.92]);
  });
});

const offer = (o: Partial<Offer>): Offer => ({ offer_id: "o", method_id: "visa", title: "t", description: "", discount_type: "percent", discount_value: 5, ...o }) as Offer;
const ctx = { device_type: "mobile", country: "NL", amount: 5000, currency: "EUR" } as const;
const NOW = "2026-06-01T12:00:00.000Z";

describe("offers", () => {
  it("filters by window, amount, currency, country and device; unknown context filters nothing", () => {
    expect(isOfferEligible(offer({ starts_at: "2026-06-02T00:00:00Z" }), ctx, NOW)).toBe(false);
    expect(isOfferEligible(offer({ ends_at: "2026-06-01T12:00:00.000Z" }), ctx, NOW)).toBe(false); // ends_at is exclusive
    expect(isOfferEligible(offer({ starts_at: "2026-06-01T12:00:00.000Z" }), ctx, NOW)).toBe(true);
    // Timestamps without milliseconds (as admins write them) are the same instants.
    const later = "2026-06-01T12:00:00.400Z";
    expect(isOfferEligible(offer({ ends_at: "2026-06-01T12:00:00Z" }), ctx, later)).toBe(false);
    expect(isOfferEligible(offer({ starts_at: "2026-06-01T12:00:00Z" }), ctx, later)).toBe(true);
    expect(isOfferEligible(offer({ min_amount: 6000 }), ctx, NOW)).toBe(false);
    expect(isOfferEligible(offer({ currency: "USD" }), ctx, NOW)).toBe(false);
    expect(isOfferEligible(offer({ countries: ["BE"] }), ctx, NOW)).toBe(false);
    expect(isOfferEligible(offer({ device_types: ["desktop"] }), ctx, NOW)).toBe(false);
    expect(isOfferEligible(offer({ min_amount: 6000, currency: "USD", countries: ["BE"], device_types: ["desktop"] }), { device_type: null, country: null, amount: null, currency: null }, NOW)).toBe(true);
  });

  it("values percent offers on the basket and ranks by expected value", () => {
    expect(offerValue(offer({ discount_value: 10 }), 5000)).toBe(500);
    expect(offerValue(offer({ discount_type: "fixed", discount_value: 300 }), 5000)).toBe(300);
    // No amount: a percent of 10,000 minor units or min_amount, whichever is larger (docs/personalization.md).
    expect(offerValue(offer({ discount_value: 10 }), null)).toBe(1000);
    expect(offerValue(offer({ discount_value: 10, min_amount: 25_000, currency: "KWD" }), null)).toBe(2500);
    expect(offerValue(offer({ discount_value: 5 }), 1e12)).toBe(5e10); // the largest basket, exactly
    const offers = [offer({ offer_id: "a", method_id: "visa", discount_value: 10 }), offer({ offer_id: "b", method_id: "paypal", discount_value: 10 }), offer({ offer_id: "c", method_id: "ideal" })];
    const ranked = rankOffers(offers, new Map([["visa", 0.2], ["paypal", 0.7]]), ctx, NOW);
    expect(ranked.map((o) => o.offer_id)).toEqual(["b", "a"]); // ideal is not in the answer
    expect(ranked[0]!.relevance).toBe(0.7);
  });

  it("values a fixed discount at most at the basket: 50.00 off a 10.00 basket is worth 10.00", () => {
    const big = offer({ offer_id: "big", method_id: "klarna", discount_type: "fixed", discount_value: 5000, currency: "EUR" });
    const likely = offer({ offer_id: "likely", method_id: "visa", discount_type: "fixed", discount_value: 800, currency: "EUR" });
    expect(offerValue(big, 1000)).toBe(1000);
    expect(offerValue(big, 0)).toBe(0);
    expect(offerValue(big, null)).toBe(5000); // basket unknown: the discount as configured
    const p = new Map([["klarna", 0.2], ["visa", 0.6]]);
    // 0.2 × 10.00 = 2.00 < 0.6 × 8.00 = 4.80 (uncapped, 0.2 × 50.00 = 10.00 would win)
    expect(rankOffers([big, likely], p, { ...ctx, amount: 1000 }, NOW).map((o) => o.offer_id)).toEqual(["likely", "big"]);
    // On a basket of 100.00 the whole 50.00 counts: 0.2 × 50.00 = 10.00 > 4.80.
    expect(rankOffers([big, likely], p, { ...ctx, amount: 10_000 }, NOW).map((o) => o.offer_id)).toEqual(["big", "likely"]);
  });
});

describe("preferences rules", () => {
  const enabled = ["visa", "paypal", "klarna"];
  it("merges and validates on the merged result", () => {
    const current = { default_method: "visa", favorite_methods: ["paypal"], excluded_methods: [] };
    expect(mergePreferences(current, { default_method: null })).toEqual({ default_method: null, favorite_methods: ["paypal"], excluded_methods: [] });
    expect(preferenceProblems({ excluded_methods: ["visa"] }, mergePreferences(current, { excluded_methods: ["visa"] }), enabled)).toEqual([
      { path: "excluded_methods.0", message: "default_method visa may not be excluded" },
    ]);
    expect(preferenceProblems({ favorite_methods: ["klarna"], excluded_methods: ["klarna"] }, { default_method: null, favorite_methods: ["klarna"], excluded_methods: ["klarna"] }, enabled)[0]!.path).toBe("favorite_methods.0");
    expect(preferenceProblems({ favorite_methods: ["ideal"] }, { default_method: null, favorite_methods: ["ideal"], excluded_methods: [] }, enabled)).toEqual([
      { path: "favorite_methods.0", message: "method ideal is not enabled for this merchant" },
    ]);
  });
});
