import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../../src/index";
import { verifyDecision } from "../../src/personalization/decision";
import { assignArm } from "../../src/personalization/holdout";
import { CROSS_MERCHANT_FRESH_MS, profileKey, readProfile } from "../../src/storage/profile";
import { admin, api, BASE, createMerchant, expectError, type TestMerchant } from "../helpers/fixtures";
import { recordPayments, refOf, repeat } from "../helpers/usage";

interface MethodsBody {
  methods: { method_id: string; confidence: number; score: number }[];
  personalized: boolean;
  fallback_reason?: string;
  decision_id: string;
  context: Record<string, unknown>;
}

const IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";

async function methods(m: TestMerchant, params: Record<string, string>, headers: Record<string, string> = {}): Promise<MethodsBody> {
  const res = await api(m.secretKey, `/v1/personalize/methods?${new URLSearchParams(params)}`, { headers });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return JSON.parse(text) as MethodsBody;
}
const ids = (b: MethodsBody) => b.methods.map((m) => m.method_id);

async function put(m: TestMerchant, body: Record<string, unknown>): Promise<Response> {
  return api(m.secretKey, "/v1/personalize/preferences", { method: "PUT", body: JSON.stringify(body) });
}

/** A customer id whose deterministic arm at this merchant is `arm`. */
async function customerInArm(merchantId: string, percent: number, arm: "holdout" | "treatment", prefix: string): Promise<string> {
  for (let i = 0; i < 1000; i++) {
    const id = `${prefix}_${i}`;
    if (assignArm(merchantId, await refOf(id), percent) === arm) return id;
  }
  throw new Error("no customer found");
}

let shop: TestMerchant;
beforeAll(async () => {
  shop = await createMerchant();
});

describe("GET /v1/personalize/methods", () => {
  it("echoes the zone by its IANA spelling whatever the case it was sent in; a link the runtime would swap for an older alias is echoed as sent", async () => {
    const echoes: [string, string][] = [
      ["europe/amsterdam", "Europe/Amsterdam"], ["AMERICA/NEW_YORK", "America/New_York"], ["utc", "UTC"], ["etc/gmt+5", "Etc/GMT+5"], ["antarctica/dumontdurville", "Antarctica/DumontDUrville"],
      // resolvedOptions answers Asia/Calcutta, Europe/Kiev, America/Buenos_Aires, America/New_York, UTC for these: kept.
      ["Asia/Kolkata", "Asia/Kolkata"], ["Europe/Kyiv", "Europe/Kyiv"], ["America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires"], ["US/Eastern", "US/Eastern"], ["Etc/UTC", "Etc/UTC"],
    ];
    for (const [sent, echoed] of echoes) {
      const body = await methods(shop, { customer_id: "tz_case", timezone: sent });
      expect(body.context.timezone, sent).toBe(echoed);
    }
  });

  it.each(["UTC", "EST5EDT", "Etc/GMT+5", "America/Argentina/Buenos_Aires", "America/Port-au-Prince"])("accepts the IANA time zone %s", async (timezone) => {
    const body = await methods(shop, { customer_id: "tz_1", timezone });
    expect(body.context.timezone).toBe(timezone);
  });

  it("answers a new customer with the merchant's default order, no_history, a verifiable decision id and the context", async () => {
    const body = await methods(shop, { customer_id: "new_1", device_type: "desktop", country: "NL", currency: "EUR", timezone: "Europe/Amsterdam" });
    expect(body.personalized).toBe(false);
    expect(body.fallback_reason).toBe("no_history");
    expect(ids(body)).toEqual(["visa", "mastercard", "apple_pay", "google_pay", "paypal", "klarna", "ideal"]);
    const sum = body.methods.reduce((a, m) => a + m.confidence, 0);
    expect(sum).toBeLessThanOrEqual(1);
    for (const m of body.methods) expect(m.confidence).toBeGreaterThanOrEqual(0);
    expect(body.context).toMatchObject({ device_type: "desktop", country: "NL", currency: "EUR", timezone: "Europe/Amsterdam" });
    expect(["night", "morning", "afternoon", "evening"]).toContain(body.context.time_of_day);
    expect(body.context.day_of_week).toBeGreaterThanOrEqual(0);
    const claims = await verifyDecision(env.SIGNING_KEY, body.decision_id, shop.merchantId);
    expect(claims).toMatchObject({ m: shop.merchantId, a: "treatment", f: "no_history", r: ids(body) });
    expect(await verifyDecision(env.SIGNING_KEY, body.decision_id, "another_merchant")).toBeNull();
  });

  it("filters methods unavailable by country, currency and amount, and filters nothing on an unknown country", async () => {
    expect(ids(await methods(shop, { customer_id: "c_av", country: "US" }))).not.toContain("ideal");
    expect(ids(await methods(shop, { customer_id: "c_av", country: "NL" }))).toContain("ideal");
    expect(ids(await methods(shop, { customer_id: "c_av", currency: "USD" }))).not.toContain("ideal");
    expect(ids(await methods(shop, { customer_id: "c_av", amount: "1000", currency: "USD" }))).not.toContain("klarna"); // Klarna min 35 USD
    expect(ids(await methods(shop, { customer_id: "c_av", amount: "2000000", currency: "USD" }))).not.toContain("klarna"); // max 10,000 USD
    expect(ids(await methods(shop, { customer_id: "c_av", amount: "9900", currency: "USD" }))).toContain("klarna");
    expect(ids(await methods(shop, { customer_id: "c_av" }))).toHaveLength(7);
  });

  it("resolves context from User-Agent and CF-IPCountry, and explicit parameters win", async () => {
    const fromHeaders = await methods(shop, { customer_id: "c_ctx" }, { "User-Agent": IPHONE, "CF-IPCountry": "US" });
    expect(fromHeaders.context).toMatchObject({ device_type: "mobile", country: "US" });
    expect(ids(fromHeaders)).not.toContain("ideal");
    const explicit = await methods(shop, { customer_id: "c_ctx", device_type: "desktop", country: "NL" }, { "User-Agent": IPHONE, "CF-IPCountry": "US" });
    expect(explicit.context).toMatchObject({ device_type: "desktop", country: "NL" });
    const unknown = await methods(shop, { customer_id: "c_ctx" }, { "CF-IPCountry": "XX" });
    expect(unknown.context).toMatchObject({ device_type: null, country: null, timezone: "UTC" });
  });

  it("learns context-dependent habits: the wallet on mobile, the card on desktop", async () => {
    await recordPayments(shop.merchantId, "habit_1", [
      ...repeat(5, { method_id: "apple_pay", device_type: "mobile" }),
      ...repeat(5, { method_id: "mastercard", device_type: "desktop" }),
    ]);
    const mobile = await methods(shop, { customer_id: "habit_1", device_type: "mobile" });
    expect(mobile.personalized).toBe(true);
    expect(mobile.fallback_reason).toBeUndefined();
    expect(ids(mobile)[0]).toBe("apple_pay");
    expect(mobile.methods[0]!.confidence).toBeGreaterThan(mobile.methods[1]!.confidence);
    expect(mobile.methods[0]!.score).toBeGreaterThan(mobile.methods[1]!.score);
    const desktop = await methods(shop, { customer_id: "habit_1", device_type: "desktop" });
    expect(ids(desktop)[0]).toBe("mastercard");
    expect(desktop.methods.reduce((a, m) => a + m.confidence, 0)).toBeLessThanOrEqual(1);
  });

  it("follows a habit change: recent payments outweigh old ones", async () => {
    const old = new Date(Date.now() - 120 * 86_400_000).toISOString();
    await recordPayments(shop.merchantId, "switcher", [...repeat(6, { method_id: "visa", occurred_at: old }), ...repeat(2, { method_id: "paypal" })]);
    expect(ids(await methods(shop, { customer_id: "switcher" }))[0]).toBe("paypal");
  });

  it("never returns excluded methods, in personalized and fallback answers alike; preference changes show at once", async () => {
    await recordPayments(shop.merchantId, "excl_1", repeat(4, { method_id: "paypal" }));
    const before = await methods(shop, { customer_id: "excl_1" }); // warms the profile cache
    expect(ids(before)[0]).toBe("paypal");
    expect((await put(shop, { customer_id: "excl_1", excluded_methods: ["paypal", "klarna"] })).status).toBe(200);
    const after = await methods(shop, { customer_id: "excl_1" });
    expect(ids(after)).not.toContain("paypal");
    expect(ids(after)).not.toContain("klarna");
    expect((await put(shop, { customer_id: "excl_1", personalization_enabled: false })).status).toBe(200);
    const optedOut = await methods(shop, { customer_id: "excl_1" });
    expect(optedOut.fallback_reason).toBe("personalization_disabled");
    expect(ids(optedOut)).not.toContain("paypal");
  });

  it("puts the stored default and favourites forward for a customer without payments", async () => {
    expect((await put(shop, { customer_id: "pref_only", default_method: "google_pay" })).status).toBe(200);
    const body = await methods(shop, { customer_id: "pref_only" });
    expect(body.personalized).toBe(true);
    expect(ids(body)[0]).toBe("google_pay");
    const rankOfIdeal = async () => ids(await methods(shop, { customer_id: "pref_only", country: "NL" })).indexOf("ideal");
    expect((await put(shop, { customer_id: "pref_only", default_method: null })).status).toBe(200);
    const before = await rankOfIdeal();
    expect((await put(shop, { customer_id: "pref_only", favorite_methods: ["ideal"] })).status).toBe(200);
    expect(await rankOfIdeal()).toBeLessThan(before);
  });

  it("a stated default or favourite this answer cannot show is no personal signal: unavailable here, or no longer offered", async () => {
    const m = await createMerchant();
    expect((await put(m, { customer_id: "ideal_def", default_method: "ideal", favorite_methods: ["ideal"] })).status).toBe(200);
    expect((await methods(m, { customer_id: "ideal_def", country: "NL" })).personalized).toBe(true);
    const us = await methods(m, { customer_id: "ideal_def", country: "US" });
    expect(ids(us)).not.toContain("ideal");
    expect(us).toMatchObject({ personalized: false, fallback_reason: "no_history" });

    expect((await put(m, { customer_id: "stale_def", default_method: "klarna" })).status).toBe(200);
    expect((await methods(m, { customer_id: "stale_def" })).personalized).toBe(true);
    const patch = await admin(`/v1/admin/merchants/${m.merchantId}`, { method: "PATCH", body: JSON.stringify({ methods: ["visa", "mastercard", "apple_pay"] }) });
    expect(patch.status).toBe(200);
    const after = await methods(m, { customer_id: "stale_def" });
    expect(ids(after)).toEqual(["visa", "mastercard", "apple_pay"]);
    expect(after).toMatchObject({ personalized: false, fallback_reason: "no_history" });
  });

  it("answers customer_deleted while a deletion is pending, before every other reason", async () => {
    await recordPayments(shop.merchantId, "gone_1", repeat(3, { method_id: "paypal" }));
    await put(shop, { customer_id: "gone_1", personalization_enabled: false, excluded_methods: ["visa"] });
    const now = new Date().toISOString();
    await env.DB.prepare("INSERT INTO customer_deletions (merchant_id, customer_ref, status, requested_at, purge_after) VALUES (?, ?, 'pending', ?, ?)")
      .bind(shop.merchantId, await refOf("gone_1"), now, now)
      .run();
    await env.CACHE.delete(`profile:${shop.merchantId}:${await refOf("gone_1")}`);
    const body = await methods(shop, { customer_id: "gone_1" });
    expect(body.fallback_reason).toBe("customer_deleted");
    expect(body.personalized).toBe(false);
    expect(ids(body)[0]).toBe("visa"); // the deleted customer's data (exclusions included) is no longer used
    expect((await verifyDecision(env.SIGNING_KEY, body.decision_id, shop.merchantId))!.a).toBeNull();
  });
});

describe("holdout", () => {
  let m: TestMerchant;
  beforeAll(async () => {
    m = await createMerchant({ holdout_percent: 50 });
  });

  it("answers every holdout customer with holdout, new or not, stably; opted-out beats holdout", async () => {
    const fresh = await customerInArm(m.merchantId, 50, "holdout", "ho_new");
    const first = await methods(m, { customer_id: fresh });
    expect(first.fallback_reason).toBe("holdout");
    expect((await verifyDecision(env.SIGNING_KEY, first.decision_id, m.merchantId))!.a).toBe("holdout");

    const regular = await customerInArm(m.merchantId, 50, "holdout", "ho_old");
    await recordPayments(m.merchantId, regular, repeat(5, { method_id: "paypal" }));
    for (let i = 0; i < 5; i++) {
      const body = await methods(m, { customer_id: regular });
      expect(body.fallback_reason).toBe("holdout");
      expect(ids(body)[0]).toBe("visa"); // the merchant's default order
    }
    await put(m, { customer_id: regular, personalization_enabled: false });
    expect((await methods(m, { customer_id: regular })).fallback_reason).toBe("personalization_disabled");

    const treated = await customerInArm(m.merchantId, 50, "treatment", "ho_t");
    await recordPayments(m.merchantId, treated, repeat(5, { method_id: "paypal" }));
    const t = await methods(m, { customer_id: treated });
    expect(t.personalized).toBe(true);
    expect(ids(t)[0]).toBe("paypal");
  });

  it("splits customers close to holdout_percent", async () => {
    let held = 0;
    for (let i = 0; i < 400; i++) if (assignArm(m.merchantId, await refOf(`split_${i}`), 50) === "holdout") held++;
    expect(held).toBeGreaterThan(160);
    expect(held).toBeLessThan(240);
  });
});

describe("cross-merchant", () => {
  it("a merchant with the feature off contributes nothing, even with consent at both (its customer ids may be its own)", async () => {
    const a = await createMerchant({ features: { targeted_offers: false, cross_merchant: true } });
    const local = await createMerchant(); // cross_merchant off
    const customer = "xm_local_42";
    await recordPayments(local.merchantId, customer, repeat(8, { method_id: "google_pay" }));
    await put(local, { customer_id: customer, cross_merchant_consent: true });
    await put(a, { customer_id: customer, cross_merchant_consent: true });
    expect((await methods(a, { customer_id: customer })).fallback_reason).toBe("no_history");
  });

  it("uses payments at another merchant only with consent at both, both ways, and the feature on", async () => {
    const a = await createMerchant({ features: { targeted_offers: false, cross_merchant: true } });
    const b = await createMerchant({ features: { targeted_offers: false, cross_merchant: true } });
    const customer = "xm_1";
    await recordPayments(b.merchantId, customer, repeat(8, { method_id: "google_pay" }));

    // Consent only here: nothing crosses.
    await put(a, { customer_id: customer, cross_merchant_consent: true });
    expect((await methods(a, { customer_id: customer })).fallback_reason).toBe("no_history");

    // Consent at the other merchant too: its counts inform the order here.
    await put(b, { customer_id: customer, cross_merchant_consent: true });
    const both = await methods(a, { customer_id: customer });
    expect(both.personalized).toBe(true);
    expect(ids(both)[0]).toBe("google_pay");

    // Revoking at the other merchant takes effect here at once (this merchant's cached profile is dropped).
    await put(b, { customer_id: customer, cross_merchant_consent: false });
    expect((await methods(a, { customer_id: customer })).fallback_reason).toBe("no_history");

    // Revoking here does too.
    await put(b, { customer_id: customer, cross_merchant_consent: true });
    expect((await methods(a, { customer_id: customer })).personalized).toBe(true);
    await put(a, { customer_id: customer, cross_merchant_consent: false });
    expect((await methods(a, { customer_id: customer })).fallback_reason).toBe("no_history");
  });

  it("an opt-out of personalization at the other merchant stops its counts here at once (cached or not); opting in again brings them back", async () => {
    const a = await createMerchant({ features: { targeted_offers: false, cross_merchant: true } });
    const b = await createMerchant({ features: { targeted_offers: false, cross_merchant: true } });
    const customer = "xm_optout_b";
    await recordPayments(b.merchantId, customer, repeat(8, { method_id: "google_pay" }));
    await put(b, { customer_id: customer, cross_merchant_consent: true });
    await put(a, { customer_id: customer, cross_merchant_consent: true });
    expect(ids(await methods(a, { customer_id: customer }))[0]).toBe("google_pay"); // now cached at A

    // Only personalization_enabled changes at B; cross-merchant consent stays granted.
    await put(b, { customer_id: customer, personalization_enabled: false });
    expect((await methods(a, { customer_id: customer })).fallback_reason).toBe("no_history");
    // From D1 too, not only through the dropped cache.
    await env.CACHE.delete(profileKey(a.merchantId, await refOf(customer)));
    expect((await methods(a, { customer_id: customer })).fallback_reason).toBe("no_history");

    await put(b, { customer_id: customer, personalization_enabled: true });
    const back = await methods(a, { customer_id: customer });
    expect(back.personalized).toBe(true);
    expect(ids(back)[0]).toBe("google_pay");
  });

  it("payments only with methods this answer cannot show, here or elsewhere, are no personal signal", async () => {
    const a = await createMerchant({ methods: ["visa", "mastercard", "paypal"], features: { targeted_offers: false, cross_merchant: true } });
    await recordPayments(a.merchantId, "only_alipay", repeat(3, { method_id: "alipay" }));
    const here = await methods(a, { customer_id: "only_alipay" });
    expect(ids(here)).toEqual(["visa", "mastercard", "paypal"]);
    expect(here).toMatchObject({ personalized: false, fallback_reason: "no_history" });

    const b = await createMerchant({ features: { targeted_offers: false, cross_merchant: true } });
    await recordPayments(b.merchantId, "xm_only_ideal", repeat(4, { method_id: "ideal" }));
    await put(b, { customer_id: "xm_only_ideal", cross_merchant_consent: true });
    await put(a, { customer_id: "xm_only_ideal", cross_merchant_consent: true });
    expect((await methods(a, { customer_id: "xm_only_ideal" })).fallback_reason).toBe("no_history");
  });

  it("a merchant without the cross_merchant feature never uses other merchants' payments", async () => {
    const off = await createMerchant({ features: { targeted_offers: false, cross_merchant: false } });
    const b = await createMerchant();
    await recordPayments(b.merchantId, "xm_2", repeat(5, { method_id: "paypal" }));
    await put(off, { customer_id: "xm_2", cross_merchant_consent: true });
    await put(b, { customer_id: "xm_2", cross_merchant_consent: true });
    expect((await methods(off, { customer_id: "xm_2" })).fallback_reason).toBe("no_history");
  });
});

describe("cross-merchant part of a cached profile (API.md §4: a PATCH takes effect within 60 s)", () => {
  const features = (cross: boolean) => ({ features: { targeted_offers: false, cross_merchant: cross } });
  const patch = (m: TestMerchant, cross: boolean) =>
    admin(`/v1/admin/merchants/${m.merchantId}`, { method: "PATCH", body: JSON.stringify(features(cross)) });
  const read = async (m: TestMerchant, id: string, crossMerchant: boolean, inMs = 0, testEnv: typeof env = env) =>
    readProfile(testEnv, m.merchantId, await refOf(id), { crossMerchant, now: Date.now() + inMs });

  it("a merchant switching its feature off is out of every peer's cached profile within 45 s, not the 300 s TTL", async () => {
    const off = await createMerchant(features(true));
    const peer = await createMerchant(features(true));
    const customer = "xm_switch_off";
    await recordPayments(off.merchantId, customer, repeat(6, { method_id: "google_pay" }));
    await put(off, { customer_id: customer, cross_merchant_consent: true });
    await put(peer, { customer_id: customer, cross_merchant_consent: true });
    const first = await read(peer, customer, true);
    expect(first.profile.cross_merchant.map((x) => x.method_id)).toEqual(["google_pay"]);
    // Within the window the cached entry answers as before (no extra D1 read on the hot path).
    expect((await read(peer, customer, true, 10_000)).cache).toBe("hit");

    expect((await patch(off, false)).status).toBe(200);
    const later = await read(peer, customer, true, CROSS_MERCHANT_FRESH_MS);
    expect(later.cache).toBe("miss");
    expect(later.profile.cross_merchant).toEqual([]);
    expect(CROSS_MERCHANT_FRESH_MS).toBeLessThan(60_000);
  });

  it("a merchant with the feature off does not use the cross-merchant part of its own cached profile; switched on, it reads one", async () => {
    const m = await createMerchant(features(true));
    const other = await createMerchant(features(true));
    const customer = "xm_switch_reader";
    await recordPayments(other.merchantId, customer, repeat(6, { method_id: "paypal" }));
    await put(other, { customer_id: customer, cross_merchant_consent: true });
    await put(m, { customer_id: customer, cross_merchant_consent: true });
    expect((await read(m, customer, true)).profile.cross_merchant).toHaveLength(1);
    // The merchant's own config now says off (cached up to ~55 s): the cached counts go unused.
    const offNow = await read(m, customer, false);
    expect(offNow).toMatchObject({ cache: "hit", profile: { cross_merchant: [] } });

    // An entry written while the feature was off holds no cross-merchant part: on again, it is read at once.
    await env.CACHE.delete(profileKey(m.merchantId, await refOf(customer)));
    await read(m, customer, false);
    const onAgain = await read(m, customer, true);
    expect(onAgain.cache).toBe("miss");
    expect(onAgain.profile.cross_merchant.map((x) => x.method_id)).toEqual(["paypal"]);
  });

  it("when D1 fails, an entry whose cross-merchant part is stale still answers, without that part", async () => {
    const m = await createMerchant(features(true));
    const other = await createMerchant(features(true));
    const customer = "xm_stale_d1_down";
    await recordPayments(m.merchantId, customer, repeat(3, { method_id: "visa" }));
    await recordPayments(other.merchantId, customer, repeat(6, { method_id: "paypal" }));
    await put(other, { customer_id: customer, cross_merchant_consent: true });
    await put(m, { customer_id: customer, cross_merchant_consent: true });
    await read(m, customer, true);
    const down = await read(m, customer, true, CROSS_MERCHANT_FRESH_MS, { ...env, DB: env.UNMIGRATED_DB });
    expect(down.cache).toBe("hit");
    expect(down.profile.cross_merchant).toEqual([]);
    expect(down.profile.stats.length).toBeGreaterThan(0);
  });
});

describe("merchant scoring weights", () => {
  it("a merchant override (scoring_weights) changes the ranking", async () => {
    const plain = await createMerchant();
    const tuned = await createMerchant({ scoring_weights: { default_boost: 8 } });
    for (const m of [plain, tuned]) {
      await recordPayments(m.merchantId, "w_1", repeat(3, { method_id: "paypal" }));
      await put(m, { customer_id: "w_1", default_method: "visa" });
    }
    expect(ids(await methods(plain, { customer_id: "w_1" }))[0]).toBe("paypal");
    expect(ids(await methods(tuned, { customer_id: "w_1" }))[0]).toBe("visa");
  });
});

/**
 * D1 failures cannot be produced by Miniflare on demand, so these tests call the worker's fetch
 * directly with the real env whose D1 binding is wrapped: the named methods throw, every other call
 * goes to the real binding. This wraps a real binding; it is not a fake of one.
 */
function envWithFailingD1(failing: ("batch" | "prepare")[]): typeof env {
  const db = new Proxy(env.DB, {
    get(target, prop) {
      if (failing.includes(prop as "batch")) return () => { throw new Error("D1 unavailable (test)"); };
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { ...env, DB: db };
}

async function callWorker(m: TestMerchant, query: string, workerEnv: typeof env): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`${BASE}/v1/personalize/methods?${query}`, { headers: { "X-API-Key": m.secretKey } }), workerEnv, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

describe("degraded and cached answers", () => {
  it("answers 200 degraded with the merchant's default order for the context when the profile cannot be read", async () => {
    const m = await createMerchant();
    await recordPayments(m.merchantId, "deg_1", repeat(4, { method_id: "paypal" }));
    const warm = await callWorker(m, "customer_id=warmup", env); // caches key and merchant in this isolate
    expect(warm.status).toBe(200);
    const res = await callWorker(m, "customer_id=deg_1&country=US", envWithFailingD1(["batch"]));
    expect(res.status).toBe(200);
    const body = await res.json<MethodsBody>();
    expect(body.personalized).toBe(false);
    expect(body.fallback_reason).toBe("degraded");
    expect(ids(body)).toEqual(["visa", "mastercard", "apple_pay", "google_pay", "paypal", "klarna"]); // no iDEAL in the US
    expect(await verifyDecision(env.SIGNING_KEY, body.decision_id, m.merchantId)).toMatchObject({ f: "degraded", a: "treatment" });
  });

  it("answers 200 degraded when the profile read does not finish in time (a slow D1 is a failure too)", async () => {
    const m = await createMerchant();
    expect((await callWorker(m, "customer_id=warmup", env)).status).toBe(200); // caches key and merchant in this isolate
    // The real D1 binding, with its batch (the profile read) never answering.
    const hanging = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "batch") return () => new Promise(() => {});
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const res = await callWorker(m, "customer_id=slow_1&country=US", { ...env, DB: hanging });
    expect(res.status).toBe(200);
    const body = await res.json<MethodsBody>();
    expect(body).toMatchObject({ personalized: false, fallback_reason: "degraded" });
    expect(ids(body)).toEqual(["visa", "mastercard", "apple_pay", "google_pay", "paypal", "klarna"]);
  });

  it("answers from a cached profile without any D1 query", async () => {
    const m = await createMerchant();
    await recordPayments(m.merchantId, "hit_1", repeat(4, { method_id: "paypal" }));
    const first = await callWorker(m, "customer_id=hit_1", env);
    expect(first.status).toBe(200);
    const res = await callWorker(m, "customer_id=hit_1", envWithFailingD1(["batch", "prepare"]));
    const body = await res.json<MethodsBody>();
    expect(body.personalized).toBe(true);
    expect(ids(body)[0]).toBe("paypal");
  });
});

describe("validation", () => {
  it.each([
    [{}, "customer_id"],
    [{ customer_id: "bad id!" }, "customer_id"],
    [{ customer_id: "c", device_type: "phone" }, "device_type"],
    [{ customer_id: "c", country: "nl" }, "country"],
    [{ customer_id: "c", amount: "-5" }, "amount"],
    [{ customer_id: "c", amount: "12.5" }, "amount"],
    [{ customer_id: "c", currency: "usd" }, "currency"],
    [{ customer_id: "c", currency: "UDS" }, "currency"], // the right shape, not a currency
    [{ customer_id: "c", country: "ZZ" }, "country"],
    [{ customer_id: "c", country: "UK" }, "country"], // Great Britain is GB
    [{ customer_id: "c", timezone: "Mars/Olympus_Mons" }, "timezone"],
    [{ customer_id: "c", colour: "red" }, "colour"],
  ])("rejects %j at %s", async (params, path) => {
    const res = await api(shop.secretKey, `/v1/personalize/methods?${new URLSearchParams(params as Record<string, string>)}`);
    const body = await expectError(res, 400, "VALIDATION_ERROR");
    expect(body.error.details!.map((d) => d.path)).toContain(path);
  });

  it("tells a client whose unencoded + in Etc/GMT+5 arrived as a space to send %2B; a zone that does not exist (Etc/GMT+14) is a 400 too", async () => {
    const plus = await expectError(await api(shop.secretKey, "/v1/personalize/methods?customer_id=c&timezone=Etc/GMT+5"), 400, "VALIDATION_ERROR");
    expect(plus.error.details).toEqual([
      { path: "timezone", message: "must be an IANA time zone name; it has a space, which is how a query string reads an unencoded +: send + as %2B (Etc/GMT%2B5)" },
    ]);
    const missing = await expectError(await api(shop.secretKey, "/v1/personalize/methods?customer_id=c&timezone=Etc/GMT%2B14"), 400, "VALIDATION_ERROR");
    expect(missing.error.details).toEqual([{ path: "timezone", message: "is not a known IANA time zone" }]);
    const malformed = await expectError(await api(shop.secretKey, "/v1/personalize/methods?customer_id=c&timezone=%2B05:30"), 400, "VALIDATION_ERROR");
    expect(malformed.error.details).toEqual([{ path: "timezone", message: "must be an IANA time zone name" }]);
  });

  it("accepts the key in the query and rejects another merchant's id", async () => {
    const ok = await api(null, `/v1/personalize/methods?customer_id=c&api_key=${shop.secretKey}`);
    expect(ok.status).toBe(200);
    await expectError(await api(shop.secretKey, "/v1/personalize/methods?customer_id=c&merchant_id=someone_else"), 403, "MERCHANT_MISMATCH");
    const own = await api(shop.secretKey, `/v1/personalize/methods?customer_id=c&merchant_id=${shop.merchantId}`);
    expect(own.status).toBe(200);
  });
});
