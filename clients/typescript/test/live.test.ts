// Against the real worker started by `npm run test:clients` (scripts/clients/test.mjs).
import { beforeAll, describe, expect, it } from "vitest";
import { Tap2Client, Tap2Error } from "../src/index";

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests with \`npm run test:clients\``);
  return value;
};

let baseUrl: string;
let sk: Tap2Client;
const run = Date.now().toString(36);
const customer = (name: string) => `ts_${name}_${run}`;

beforeAll(() => {
  baseUrl = env("TAP2_BASE_URL");
  sk = new Tap2Client({ apiKey: env("TAP2_SECRET_KEY"), baseUrl, timeoutMs: 15_000 });
});

async function eventually<T>(read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 300));
  }
}

describe("TypeScript client against the local worker", () => {
  it("puts and reads back preferences, and the change lands in the consent log", async () => {
    const id = customer("prefs");
    const defaults = await sk.getPreferences(id);
    expect(defaults).toMatchObject({ customer_id: id, personalization_enabled: true, favorite_methods: [], default_method: null });

    const put = await sk.putPreferences({ customer_id: id, default_method: "paypal", favorite_methods: ["paypal", "visa"], personalization_enabled: false });
    expect(put.updated).toBe(true);
    expect(put.preferences).toMatchObject({ default_method: "paypal", favorite_methods: ["paypal", "visa"], personalization_enabled: false });

    const read = await sk.getPreferences(id);
    expect(read).toMatchObject({ default_method: "paypal", favorite_methods: ["paypal", "visa"], personalization_enabled: false });

    const consent = await sk.getConsent(id);
    expect(consent.entries).toContainEqual(expect.objectContaining({ consent_type: "personalization", action: "revoked", merchant_id: env("TAP2_MERCHANT_ID") }));
  });

  it("ranks methods, and excluded methods are never returned", async () => {
    const id = customer("methods");
    await sk.putPreferences({ customer_id: id, excluded_methods: ["klarna"] });
    const res = await sk.getMethods({ customer_id: id, device_type: "mobile", country: "US", amount: 4999, currency: "USD" });
    expect(res.decision_id).toBeTruthy();
    expect(res.methods.length).toBeGreaterThan(0);
    const ids = res.methods.map((m) => m.method_id);
    expect(ids).not.toContain("klarna");
    for (const id of ids) expect(env("TAP2_METHODS").split(",")).toContain(id);
    const total = res.methods.reduce((sum, m) => sum + m.confidence, 0);
    expect(total).toBeLessThanOrEqual(1.000001);
    expect(res.personalized).toBe(false);
    expect(res.fallback_reason).toBe("no_history");
  });

  it("answers offers for the merchant's configured offers only", async () => {
    const res = await sk.getOffers({ customer_id: customer("offers"), device_type: "mobile", country: "US", amount: 5000, currency: "USD" });
    // Both configured offers fit a mobile USD basket in the US; nothing else is configured.
    expect(res.offers.map((o) => o.offer_id).sort()).toEqual(["applepay_5off", "paypal_2off"]);
  });

  it("sends feedback (204) once per event_id, even when repeated, and batches (202)", async () => {
    const id = customer("feedback");
    const first = await sk.sendFeedback({ customer_id: id, method_id: "visa", amount: 1200, currency: "USD" });
    expect(first.eventId).toMatch(/^evt_/);
    // The same event again (as a retry after a lost answer would send it): stored once.
    await sk.sendFeedback({ customer_id: id, method_id: "visa", amount: 1200, currency: "USD", event_id: first.eventId });

    const batch = await sk.sendFeedbackBatch([
      { customer_id: id, method_id: "paypal" },
      { customer_id: id, method_id: "apple_pay", event_id: `${id}_b2` },
    ]);
    expect(batch.accepted).toBe(2);
    expect(batch.idempotencyKey).toMatch(/^batch_/);

    const exported = await eventually(() => sk.exportCustomer(id), (e) => e.usage_events.length >= 3);
    const ids = exported.usage_events.map((e) => e.event_id);
    expect(ids.filter((e) => e === first.eventId)).toHaveLength(1);
    expect(ids).toContain(`${id}_b2`);
    expect(exported.usage_events).toHaveLength(3);
  });

  it("sends an empty idempotencyKey as given: a 400, not a generated key", async () => {
    const err = await sk.sendFeedbackBatch([{ customer_id: customer("emptykey"), method_id: "visa" }], { idempotencyKey: "" }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 400, code: "VALIDATION_ERROR" });
  });

  it("deletes, restores and exports a customer", async () => {
    const id = customer("rights");
    await sk.putPreferences({ customer_id: id, favorite_methods: ["ideal"] });
    const deleted = await sk.deleteCustomer(id);
    expect(deleted).toMatchObject({ customer_id: id, status: "pending_deletion" });
    expect(Date.parse(deleted.purge_after)).toBeGreaterThan(Date.now() + 29 * 86_400_000);
    expect((await sk.getPreferences(id)).favorite_methods).toEqual([]);
    expect((await sk.exportCustomer(id)).status).toBe("pending_deletion");

    expect(await sk.restoreCustomer(id)).toEqual({ customer_id: id, status: "active" });
    const exported = await sk.exportCustomer(id);
    expect(exported).toMatchObject({ customer_id: id, status: "active" });
    expect((await sk.getPreferences(id)).favorite_methods).toEqual(["ideal"]);
  });

  it("names the merchant on the calls that take only a customer id, the catalog and analytics: its own is accepted, another is a 403", async () => {
    const id = customer("merchant");
    const own = { merchantId: env("TAP2_MERCHANT_ID") };
    const other = { merchantId: "m_someone_else" };
    expect((await sk.getPreferences(id, own)).merchant_id).toBe(env("TAP2_MERCHANT_ID"));
    expect((await sk.getConsent(id, own)).entries).toEqual([]);
    expect((await sk.getPaymentMethods(own)).length).toBeGreaterThan(0);
    expect((await sk.getAnalyticsSummary({ merchant_id: own.merchantId })).merchant_id).toBe(own.merchantId);
    expect((await sk.getAnalyticsTimeseries({ metric: "decisions", merchant_id: own.merchantId })).metric).toBe("decisions");
    for (const call of [
      () => sk.getAnalyticsSummary({ merchant_id: other.merchantId }),
      () => sk.getAnalyticsTimeseries({ metric: "decisions", merchant_id: other.merchantId }),
      () => sk.getPreferences(id, other),
      () => sk.getConsent(id, other),
      () => sk.exportCustomer(id, other),
      () => sk.deleteCustomer(id, other),
      () => sk.restoreCustomer(id, other),
      () => sk.getPaymentMethods(other),
    ]) {
      await expect(call()).rejects.toMatchObject({ status: 403 });
    }
    expect(await sk.deleteCustomer(id, own)).toMatchObject({ customer_id: id, status: "pending_deletion" });
    expect((await sk.exportCustomer(id, own)).status).toBe("pending_deletion");
    expect(await sk.restoreCustomer(id, own)).toEqual({ customer_id: id, status: "active" });
  });

  it("throws Tap2Error with code, message and request id for an invalid key and for invalid input", async () => {
    const bad = new Tap2Client({ apiKey: "tp2_sk_not_a_real_key_000000000000000000", baseUrl });
    const err = await bad.getPreferences("cus_1").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Tap2Error);
    expect(err).toMatchObject({ status: 401, code: "INVALID_API_KEY" });
    expect((err as Tap2Error).requestId).toMatch(/^req_/);
    expect((err as Tap2Error).message.length).toBeGreaterThan(0);

    const pk = new Tap2Client({ apiKey: env("TAP2_PUBLISHABLE_KEY"), baseUrl });
    await expect(pk.getPreferences("cus_1")).rejects.toMatchObject({ status: 403, code: "KEY_NOT_ALLOWED" });

    const invalid = await sk.putPreferences({ customer_id: customer("invalid"), default_method: "klarna", excluded_methods: ["klarna"] }).catch((e: unknown) => e);
    expect(invalid).toMatchObject({ status: 400, code: "VALIDATION_ERROR" });
    expect((invalid as Tap2Error).details?.length).toBeGreaterThan(0);
  });

  it("opens a checkout session", async () => {
    const s = await sk.createCheckoutSession({ customer_id: customer("checkout"), amount: 9900, currency: "USD" });
    expect(s.id).toMatch(/^cs_/);
    expect(s.client_secret.startsWith(`${s.id}_secret_`)).toBe(true);
    expect(s).toMatchObject({ merchant_id: env("TAP2_MERCHANT_ID"), amount: 9900, currency: "USD" });
    // The same request under the same Idempotency-Key answers the same session.
    const key = `cs_retry_${customer("checkout")}`;
    const once = await sk.createCheckoutSession({ customer_id: customer("checkout"), amount: 9900, currency: "USD" }, { idempotencyKey: key });
    const again = await sk.createCheckoutSession({ customer_id: customer("checkout"), amount: 9900, currency: "USD" }, { idempotencyKey: key });
    expect(again).toEqual(once);
    expect(once.id).not.toBe(s.id);

    // The checkout page's side: the publishable key reads the order through the session's secret.
    const pk = new Tap2Client({ apiKey: env("TAP2_PUBLISHABLE_KEY"), baseUrl });
    const res = await pk.getMethods({ client_secret: s.client_secret, device_type: "mobile", country: "US" });
    expect(res.decision_id).toBeTruthy();
    expect(res.methods.length).toBeGreaterThan(0);
    await expect(pk.getMethods({ client_secret: `${s.client_secret}x` })).rejects.toMatchObject({ status: 401, code: "INVALID_CLIENT_SECRET" });
  });

  it("reads the analytics summary, which counts a decision just made", async () => {
    await sk.getMethods({ customer_id: customer("analytics"), device_type: "mobile", country: "US" });
    // Decisions reach the summary through the analytics queue: wait for the consumer.
    const decisions = (s: Awaited<ReturnType<Tap2Client["getAnalyticsSummary"]>>) => s.arms.treatment.decisions + s.arms.holdout.decisions;
    const s = await eventually(() => sk.getAnalyticsSummary(), (v) => decisions(v) >= 1);
    expect(s.merchant_id).toBe(env("TAP2_MERCHANT_ID"));
    expect(decisions(s)).toBeGreaterThanOrEqual(1);
  });

  it("a rate-limited merchant: 429 RATE_LIMITED with Retry-After, and the client waits it out when allowed to retry", async () => {
    const noRetry = new Tap2Client({ apiKey: env("TAP2_LIMITED_SECRET_KEY"), baseUrl, maxRetries: 0 });
    let limited: unknown = null;
    for (let i = 0; i < 10 && limited === null; i += 1) {
      limited = await noRetry.getPreferences(customer("limited")).then(() => null, (e: unknown) => e);
    }
    expect(limited).toBeInstanceOf(Tap2Error);
    expect(limited).toMatchObject({ status: 429, code: "RATE_LIMITED" });
    expect((limited as Tap2Error).retryAfterSeconds).toBeGreaterThanOrEqual(1);

    const waits: number[] = [];
    const patient = new Tap2Client({
      apiKey: env("TAP2_LIMITED_SECRET_KEY"),
      baseUrl,
      maxRetries: 5,
      sleep: (ms) => {
        waits.push(ms);
        return new Promise((r) => setTimeout(r, ms));
      },
    });
    const prefs = await patient.getPreferences(customer("limited"));
    expect(prefs.customer_id).toBe(customer("limited"));
    expect(waits.length).toBeGreaterThan(0);
    expect(waits[0]).toBeGreaterThanOrEqual(1000);
  });

  // The same table is in the Python (test_live.py) and PHP (live_test.php) tests.
  const REFUSED_ID_SUFFIXES = ["/x", "?x=1", "#x", "%41", " x", "+x", "ключ", "/restore"];
  it("a customer id is one path segment or query value, whatever it holds: the API refuses one outside its charset (400), never reaching another customer or route", async () => {
    const id = customer("ids");
    await sk.putPreferences({ customer_id: id, default_method: "visa" });
    const message = "customer_id: must be 1-128 characters of A-Z a-z 0-9 . _ : @ -";
    for (const suffix of REFUSED_ID_SUFFIXES) {
      for (const call of [() => sk.exportCustomer(id + suffix), () => sk.getPreferences(id + suffix), () => sk.deleteCustomer(id + suffix), () => sk.restoreCustomer(id + suffix)]) {
        await expect(call(), JSON.stringify(suffix)).rejects.toMatchObject({ status: 400, code: "VALIDATION_ERROR", message });
      }
    }
    expect((await sk.getPreferences(id)).default_method).toBe("visa"); // not deleted by a delete of id?x=1
    const reserved = `${id}:x@y.z-`;
    expect((await sk.exportCustomer(reserved)).customer_id).toBe(reserved);
    expect((await sk.getPreferences(reserved)).customer_id).toBe(reserved);
    const amount = 4999.0;
    expect((await sk.getMethods({ customer_id: id, country: "US", currency: "USD", amount })).methods.length).toBeGreaterThan(0);
  });
});
