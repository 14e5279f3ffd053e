import { describe, expect, it } from "vitest";
import { candidateMethods } from "../../src/personalization/candidates";
import { contextPrior, populationPrior, segmentChain } from "../../src/personalization/prior";
import { fallbackReason, rankForCustomer, type RankingProfile } from "../../src/personalization/ranking";
import { recencyRef } from "../../src/personalization/recency";
import { defaultOrder, rankByProbability, scoreMethods, type UsageStat } from "../../src/personalization/scoring";
import { DEFAULT_WEIGHTS, resolveWeights } from "../../src/personalization/weights";

const NOW = Date.UTC(2026, 5, 1);
const DAY = 86_400_000;
const METHODS = ["visa", "mastercard", "apple_pay", "google_pay", "paypal", "klarna", "ideal"];
const ctx = { device_type: null, country: null, amount_band: null } as const;

/** Usage rows as the trigger would store them: `n` payments `daysAgo` days ago in each bucket. */
function uses(method_id: string, n: number, buckets: string[] = ["*"], daysAgo = 1): UsageStat[] {
  return buckets.map((bucket) => ({ bucket, method_id, weight_ref: n * recencyRef(NOW - daysAgo * DAY) }));
}

function rank(stats: UsageStat[], over: Partial<Parameters<typeof scoreMethods>[0]> = {}) {
  const candidates = over.candidates ?? METHODS;
  return scoreMethods({
    candidates, prior: populationPrior(candidates, [], ctx, DEFAULT_WEIGHTS, NOW), stats, cross: [], preferences: null, context: ctx, weights: DEFAULT_WEIGHTS, nowMs: NOW, ...over,
  });
}
const top = (r: { method_id: string }[]) => r[0]!.method_id;

describe("scoreMethods", () => {
  it("returns probabilities in [0,1] summing to at most 1, ordered by confidence and score", () => {
    const r = rank([...uses("paypal", 3), ...uses("visa", 1)]);
    expect(top(r)).toBe("paypal");
    expect(r.reduce((a, m) => a + m.confidence, 0)).toBeLessThanOrEqual(1);
    expect(r.reduce((a, m) => a + m.confidence, 0)).toBeGreaterThan(0.99);
    for (let i = 1; i < r.length; i++) {
      expect(r[i - 1]!.confidence).toBeGreaterThanOrEqual(r[i]!.confidence);
      expect(r[i - 1]!.score).toBeGreaterThanOrEqual(r[i]!.score);
    }
  });

  it("confidences sum to at most 1 in floating point too, for every number of equally likely methods", () => {
    const sum = (r: { confidence: number }[]) => r.reduce((a, m) => a + m.confidence, 0);
    let adjusted = 0;
    for (let n = 1; n <= 60; n++) {
      const ids = Array.from({ length: n }, (_, i) => `m${i}`);
      const equal = new Array<number>(n).fill(1 / n);
      for (const r of [rankByProbability(ids, equal), defaultOrder(ids, equal)]) {
        expect(sum(r)).toBeLessThanOrEqual(1);
        for (let i = 1; i < r.length; i++) expect(r[i - 1]!.confidence).toBeGreaterThanOrEqual(r[i]!.confidence);
        if (r.some((m) => m.confidence !== Math.floor(10_000 / n) / 10_000)) adjusted++;
      }
    }
    // 20 methods at 0.05 floor to exactly 10 000 ten-thousandths, whose float sum is 1.0000000000000002.
    const twenty = rankByProbability(Array.from({ length: 20 }, (_, i) => `m${i}`), new Array<number>(20).fill(0.05));
    expect(twenty.slice(0, 19).every((m) => m.confidence === 0.05)).toBe(true);
    expect(twenty[19]!.confidence).toBe(0.0499);
    expect(adjusted).toBeGreaterThan(0);
    // A single method keeps its full confidence.
    expect(rankByProbability(["visa"], [1])[0]!.confidence).toBe(1);
  });

  it("grows confident with evidence (calibration: one payment is weak, ten are strong)", () => {
    const one = rank(uses("paypal", 1))[0]!.confidence;
    const ten = rank(uses("paypal", 10))[0]!.confidence;
    expect(one).toBeLessThan(0.6);
    expect(ten).toBeGreaterThan(0.7);
    expect(ten).toBeLessThan(1);
  });

  it("weights recent payments more (habit change)", () => {
    const r = rank([...uses("visa", 6, ["*"], 120), ...uses("mastercard", 2, ["*"], 2)]);
    expect(top(r)).toBe("mastercard");
  });

  it("conditions on context and backs off to overall habits where the context has no data", () => {
    const stats = [...uses("apple_pay", 5, ["*", "device:mobile"]), ...uses("visa", 5, ["*", "device:desktop"])];
    expect(top(rank(stats, { context: { ...ctx, device_type: "mobile" } }))).toBe("apple_pay");
    expect(top(rank(stats, { context: { ...ctx, device_type: "desktop" } }))).toBe("visa");
    const tablet = rank(stats, { context: { ...ctx, device_type: "tablet" } });
    expect(tablet.slice(0, 2).map((m) => m.method_id).sort()).toEqual(["apple_pay", "visa"]);
    const big = [...uses("klarna", 3, ["*", "amount:3"]), ...uses("visa", 6, ["*", "amount:1"])];
    expect(top(rank(big, { context: { ...ctx, amount_band: 3 } }))).toBe("klarna");
    expect(top(rank(big, { context: { ...ctx, amount_band: 1 } }))).toBe("visa");
    // Country too (with the default weights: country_weight was once tuned to 0, which ignored it).
    const travels = [...uses("visa", 6, ["*", "country:NL"]), ...uses("paypal", 6, ["*", "country:DE"])];
    expect(top(rank(travels, { context: { ...ctx, country: "DE" } }))).toBe("paypal");
    expect(top(rank(travels, { context: { ...ctx, country: "NL" } }))).toBe("visa");
  });

  it("boosts the stored default and favourites", () => {
    const stats = uses("paypal", 1);
    expect(top(rank([], { preferences: { default_method: "google_pay", favorite_methods: [] } }))).toBe("google_pay");
    const plainDefault = rank(stats).findIndex((m) => m.method_id === "google_pay");
    expect(rank(stats, { preferences: { default_method: "google_pay", favorite_methods: [] } }).findIndex((m) => m.method_id === "google_pay")).toBeLessThan(plainDefault);
    expect(top(rank(stats, { preferences: { default_method: "google_pay", favorite_methods: [] }, weights: resolveWeights({ default_boost: 5 }) }))).toBe("google_pay");
    const plain = rank(stats).findIndex((m) => m.method_id === "ideal");
    const fav = rank(stats, { preferences: { default_method: null, favorite_methods: ["ideal"] } }).findIndex((m) => m.method_id === "ideal");
    expect(fav).toBeLessThan(plain);
  });

  it("counts consented payments elsewhere at a lower weight", () => {
    const cross = [{ method_id: "google_pay", weight_ref: 8 * recencyRef(NOW - DAY) }];
    expect(top(rank(uses("paypal", 1), { cross }))).toBe("google_pay");
    expect(top(rank(uses("paypal", 4), { cross }))).toBe("paypal"); // 8 elsewhere count less than 4 here
  });

  it("uses the population prior for methods the customer never used", () => {
    const candidates = METHODS;
    const popularity = [{ segment: "*", method_id: "ideal", weight_ref: 500 * recencyRef(NOW - DAY), uses: 500 }];
    const prior = populationPrior(candidates, popularity, ctx, DEFAULT_WEIGHTS, NOW);
    expect(candidates[prior.indexOf(Math.max(...prior))]).toBe("ideal");
    // One payment is weak evidence against a strong population: both lead, nothing else comes close.
    const r = rank(uses("paypal", 1), { prior });
    expect(r.slice(0, 2).map((m) => m.method_id).sort()).toEqual(["ideal", "paypal"]);
    expect(top(rank(uses("paypal", 6), { prior }))).toBe("paypal");
  });

  it("carries habits to a device class the customer has not used, through the population's segments", () => {
    const candidates = ["visa", "mastercard", "paypal", "apple_pay"];
    const segments = new Map([
      ["device:mobile", [0.15, 0.1, 0.05, 0.7]],
      ["device:desktop", [0.45, 0.2, 0.3, 0.05]],
    ]);
    const prior = [0.3, 0.15, 0.2, 0.35];
    // Apple Pay five times on mobile, Mastercard once on mobile: on desktop the card leads, not the wallet.
    const stats = [...uses("apple_pay", 5, ["*", "device:mobile"]), ...uses("mastercard", 1, ["*", "device:mobile"])];
    const desktop = rank(stats, { candidates, prior, segments, context: { ...ctx, device_type: "desktop" } });
    expect(top(desktop)).toBe("mastercard");
    expect(desktop.at(-1)!.method_id).toBe("apple_pay");
    expect(top(rank(stats, { candidates, prior, segments, context: { ...ctx, device_type: "mobile" } }))).toBe("apple_pay");
  });

  it("keeps old payments as evidence of a habit (long memory) while recency picks between methods", () => {
    const candidates = ["visa", "paypal", "ideal"];
    const prior = [0.05, 0.05, 0.9];
    const old = uses("paypal", 10, ["*"], 150).map((s) => ({ ...s, uses: 10 }));
    expect(top(rank(old, { candidates, prior, weights: resolveWeights({ long_memory: 0.1 }) }))).toBe("paypal");
    expect(top(rank(old, { candidates, prior, weights: resolveWeights({ long_memory: 0 }) }))).toBe("ideal");
  });

  it("nudges the method paid with last in this device class", () => {
    const at = (daysAgo: number) => new Date(NOW - daysAgo * DAY).toISOString();
    const stats = [
      ...uses("visa", 2, ["*", "device:desktop"]).map((s) => ({ ...s, uses: 2, last_used_at: at(3) })),
      ...uses("mastercard", 2, ["*", "device:desktop"]).map((s) => ({ ...s, uses: 2, last_used_at: at(1) })),
    ];
    const weights = resolveWeights({ last_used_boost: 0.5 });
    expect(top(rank(stats, { weights, context: { ...ctx, device_type: "desktop" } }))).toBe("mastercard");
    const reversed = stats.map((s) => ({ ...s, last_used_at: s.method_id === "visa" ? at(1) : at(3) }));
    expect(top(rank(reversed, { weights, context: { ...ctx, device_type: "desktop" } }))).toBe("visa");
  });

  it("ignores stats of methods that are not candidates (unavailable or excluded)", () => {
    const r = rank(uses("ideal", 9), { candidates: ["visa", "paypal"] });
    expect(r.map((m) => m.method_id)).toEqual(["visa", "paypal"]);
  });

  it("stays finite when probabilities underflow to 0 (counts ~1e300 apart, as a clock decades before the data gives)", () => {
    // Found by test/unit/scoringProperties.test.ts with now 40 years before the recency epoch: every stored
    // weight counted 2^487 times, so the prior share of a method nobody used underflowed to 0, and
    // log 0 − log 0 (a context dimension) and p1 × pop / 0 (a device lift) made every confidence NaN.
    const candidates = ["visa", "paypal", "ideal"];
    const huge = [{ bucket: "*", method_id: "visa", weight_ref: 0, uses: 1e300 }, { bucket: "country:NL", method_id: "visa", weight_ref: 0, uses: 1e300 }, { bucket: "device:desktop", method_id: "visa", weight_ref: 0, uses: 1e300 }];
    const segments = new Map([["device:mobile", [0.5, 0.5, 1e-300]], ["device:desktop", [1, 1e-300, 0]]]);
    for (const context of [{ ...ctx, country: "NL" }, { ...ctx, device_type: "mobile" as const }]) {
      const r = rank(huge, { candidates, prior: [1, 1e-300, 1e-300], segments, context });
      expect(r.map((m) => m.method_id)).toEqual(["visa", "paypal", "ideal"]);
      for (const m of r) expect(Number.isFinite(m.confidence) && Number.isFinite(m.score)).toBe(true);
      expect(r[0]!.confidence).toBe(1);
    }
  });

  it("gives an empty answer for no candidates", () => {
    expect(rank([], { candidates: [] })).toEqual([]);
  });
});

describe("population prior", () => {
  it("follows the merchant's default order without data, and refines by segment", () => {
    const candidates = ["visa", "apple_pay", "ideal"];
    const p = populationPrior(candidates, [], ctx, DEFAULT_WEIGHTS, NOW);
    expect(p[0]).toBeGreaterThan(p[1]!);
    expect(p[1]).toBeGreaterThan(p[2]!);
    const rows = [{ segment: "country:NL|device:mobile", method_id: "ideal", weight_ref: 200 * recencyRef(NOW), uses: 200 }];
    const nlMobile = populationPrior(candidates, rows, { device_type: "mobile", country: "NL" }, DEFAULT_WEIGHTS, NOW);
    expect(nlMobile[2]).toBeGreaterThan(0.8);
    const usMobile = populationPrior(candidates, rows, { device_type: "mobile", country: "US" }, DEFAULT_WEIGHTS, NOW);
    expect(usMobile).toEqual(p);
  });

  it("refines by basket size: a large basket leans to BNPL before the customer ever used it", () => {
    const candidates = ["visa", "apple_pay", "klarna"];
    const ref = (n: number) => n * recencyRef(NOW);
    const rows = [
      { segment: "country:US", method_id: "visa", weight_ref: ref(300), uses: 300 },
      { segment: "country:US", method_id: "apple_pay", weight_ref: ref(250), uses: 250 },
      { segment: "country:US", method_id: "klarna", weight_ref: ref(100), uses: 100 },
      { segment: "country:US|amount:3", method_id: "klarna", weight_ref: ref(80), uses: 80 },
      { segment: "country:US|amount:3", method_id: "visa", weight_ref: ref(20), uses: 20 },
      { segment: "country:US|amount:1", method_id: "visa", weight_ref: ref(200), uses: 200 },
      { segment: "country:US|amount:1", method_id: "apple_pay", weight_ref: ref(150), uses: 150 },
      { segment: "country:US|device:mobile", method_id: "apple_pay", weight_ref: ref(200), uses: 200 },
    ];
    const large = contextPrior(candidates, rows, { device_type: null, country: "US", amount_band: 3 }, DEFAULT_WEIGHTS, NOW);
    expect(candidates[large.prior.indexOf(Math.max(...large.prior))]).toBe("klarna");
    const small = contextPrior(candidates, rows, { device_type: null, country: "US", amount_band: 1 }, DEFAULT_WEIGHTS, NOW);
    expect(candidates[small.prior.indexOf(Math.max(...small.prior))]).toBe("visa");
    // The base ignores device and basket; the segments hold each device class and band.
    expect(large.base).toEqual(small.base);
    expect(large.segments.get("amount:3")![2]).toBeGreaterThan(large.base[2]!);
    const mobileSmall = contextPrior(candidates, rows, { device_type: "mobile", country: "US", amount_band: 1 }, DEFAULT_WEIGHTS, NOW);
    expect(candidates[mobileSmall.prior.indexOf(Math.max(...mobileSmall.prior))]).toBe("apple_pay");
    expect(mobileSmall.prior.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
  });

  it("chains segments coarse to fine", () => {
    expect(segmentChain({ device_type: "mobile", country: "NL" })).toEqual(["*", "country:NL", "country:NL|device:mobile"]);
    expect(segmentChain({ device_type: "mobile", country: null })).toEqual(["*", "device:mobile"]);
    expect(segmentChain({ device_type: null, country: null })).toEqual(["*"]);
  });
});

describe("candidates and fallbacks", () => {
  it("filters by availability and exclusions, keeping the merchant's order", () => {
    expect(candidateMethods(METHODS, { device_type: null, country: "US", currency: "USD", amount: 1000 }, ["paypal"])).toEqual(["visa", "mastercard", "apple_pay", "google_pay"]);
    expect(candidateMethods([...METHODS, "not_in_catalog"], { device_type: null, country: null, currency: null, amount: null })).toEqual(METHODS);
  });

  it("the default order keeps the merchant's order and reads confidences from the prior", () => {
    const r = defaultOrder(["visa", "paypal"], [0.2, 0.8]);
    expect(r.map((m) => m.method_id)).toEqual(["visa", "paypal"]);
    expect(r.map((m) => m.confidence)).toEqual([0.2, 0.8]);
  });

  const profile = (over: Partial<RankingProfile> = {}, prefs: Partial<NonNullable<RankingProfile["preferences"]>> = {}): RankingProfile => ({
    preferences: { default_method: null, favorite_methods: [], excluded_methods: [], personalization_enabled: true, ...prefs },
    stats: uses("visa", 1), cross_merchant: [], pending_deletion: false, ...over,
  });

  it("applies the precedence customer_deleted > personalization_disabled > holdout > no_history", () => {
    expect(fallbackReason(profile({ pending_deletion: true }, { personalization_enabled: false }), "holdout", METHODS)).toBe("customer_deleted");
    expect(fallbackReason(profile({}, { personalization_enabled: false }), "holdout", METHODS)).toBe("personalization_disabled");
    expect(fallbackReason(profile({ stats: [] }), "holdout", METHODS)).toBe("holdout");
    expect(fallbackReason(profile({ stats: [] }), "treatment", METHODS)).toBe("no_history");
    expect(fallbackReason(profile(), "treatment", METHODS)).toBeNull();
  });

  it("no_history also when every signal names a method this answer cannot show", () => {
    const shown = ["visa", "paypal"];
    const cross = [{ method_id: "ideal", weight_ref: 2, uses: 2 }];
    expect(fallbackReason(profile({ stats: uses("ideal", 3) }), "treatment", shown)).toBe("no_history");
    expect(fallbackReason(profile({ stats: [], cross_merchant: cross }), "treatment", shown)).toBe("no_history");
    expect(fallbackReason(profile({ stats: [] }, { default_method: "ideal", favorite_methods: ["klarna"] }), "treatment", shown)).toBe("no_history");
    // One shown method among them is a signal.
    expect(fallbackReason(profile({ stats: [...uses("ideal", 3), ...uses("paypal", 1)] }), "treatment", shown)).toBeNull();
    expect(fallbackReason(profile({ stats: [], cross_merchant: [...cross, { method_id: "visa", weight_ref: 1 }] }), "treatment", shown)).toBeNull();
    expect(fallbackReason(profile({ stats: [] }, { default_method: "paypal" }), "treatment", shown)).toBeNull();
    expect(fallbackReason(profile({ stats: [] }, { favorite_methods: ["klarna", "visa"] }), "treatment", shown)).toBeNull();
  });

  it("rankForCustomer: degraded without a profile, and arm null outside the experiment", () => {
    const merchant = { merchant_id: "m", methods: METHODS, holdout_percent: 0, scoring_weights: {} };
    const context = { device_type: null, country: "US", amount: null, currency: null, amount_band: null, timezone: "UTC", time_of_day: "night", day_of_week: 0 } as const;
    const degraded = rankForCustomer({ merchant, customerRef: "c_x", profile: null, popularity: [], context, nowMs: NOW });
    expect(degraded).toMatchObject({ personalized: false, fallback_reason: "degraded", arm: "treatment" });
    expect(degraded.methods.map((m) => m.method_id)).toEqual(["visa", "mastercard", "apple_pay", "google_pay", "paypal", "klarna"]);
    const optedOut = rankForCustomer({ merchant, customerRef: "c_x", profile: profile({}, { personalization_enabled: false, excluded_methods: ["visa"] }), popularity: [], context, nowMs: NOW });
    expect(optedOut.arm).toBeNull();
    expect(optedOut.methods.map((m) => m.method_id)).not.toContain("visa");
  });
});

describe("resolveWeights", () => {
  it("overlays known keys, clamps them and ignores unknown ones", () => {
    const w = resolveWeights({ default_boost: 3, temperature: 0, nonsense: 5 });
    expect(w.default_boost).toBe(3);
    expect(w.temperature).toBe(0.05);
    expect("nonsense" in w).toBe(false);
    expect(resolveWeights(undefined)).toEqual(DEFAULT_WEIGHTS);
  });
});
