import { env } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { type Profile, profileKey, readProfile } from "../../src/storage/profile";
import { api, createMerchant, expectError, type TestMerchant } from "../helpers/fixtures";
import { recordPayments, refOf } from "../helpers/usage";

interface PrefsBody {
  customer_id: string;
  merchant_id: string;
  default_method: string | null;
  favorite_methods: string[];
  excluded_methods: string[];
  personalization_enabled: boolean;
  cross_merchant_consent: boolean;
  created_at: string | null;
  updated_at: string | null;
  last_used_at: string | null;
}

let shop: TestMerchant;
beforeAll(async () => {
  shop = await createMerchant();
});

const get = (customerId: string) => api(shop.secretKey, `/v1/personalize/preferences?customer_id=${customerId}`);
const put = (body: Record<string, unknown>) => api(shop.secretKey, "/v1/personalize/preferences", { method: "PUT", body: JSON.stringify(body) });
const del = (customerId: string) => api(shop.secretKey, `/v1/personalize/customers/${customerId}`, { method: "DELETE" });
const restore = (customerId: string) => api(shop.secretKey, `/v1/personalize/customers/${customerId}/restore`, { method: "POST" });
const consentRows = async (customerId: string) =>
  (await env.DB.prepare("SELECT consent_type, action FROM consent_log WHERE merchant_id = ? AND customer_ref = ? ORDER BY id").bind(shop.merchantId, await refOf(customerId)).all()).results;

describe("GET /v1/personalize/preferences", () => {
  it("gives an unknown customer the defaults", async () => {
    const res = await get("nobody");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      customer_id: "nobody", merchant_id: shop.merchantId, default_method: null, favorite_methods: [], excluded_methods: [],
      personalization_enabled: true, cross_merchant_consent: false, created_at: null, updated_at: null, last_used_at: null,
    });
  });

  it("reads a customer whose deletion is pending as defaults", async () => {
    expect((await put({ customer_id: "del_1", default_method: "visa" })).status).toBe(200);
    const now = new Date().toISOString();
    await env.DB.prepare("INSERT INTO customer_deletions (merchant_id, customer_ref, status, requested_at, purge_after) VALUES (?, ?, 'pending', ?, ?)")
      .bind(shop.merchantId, await refOf("del_1"), now, now).run();
    expect(await (await get("del_1")).json<PrefsBody>()).toMatchObject({ default_method: null, created_at: null });
  });

  it("never stores the customer id in the clear", async () => {
    expect((await put({ customer_id: "clear_text_id_42", favorite_methods: ["visa"] })).status).toBe(200);
    const rows = await env.DB.prepare("SELECT customer_ref FROM preferences WHERE merchant_id = ?").bind(shop.merchantId).all<{ customer_ref: string }>();
    // The row is there, under the pseudonym; no row names the raw id.
    expect(rows.results.map((r) => r.customer_ref)).toContain(await refOf("clear_text_id_42"));
    expect(rows.results.some((r) => r.customer_ref.includes("clear_text_id_42"))).toBe(false);
  });
});

describe("PUT /v1/personalize/preferences", () => {
  it("creates, then merges: fields left out keep their values, null clears the default", async () => {
    const first = await put({ customer_id: "p_1", default_method: "apple_pay", favorite_methods: ["apple_pay", "visa"], excluded_methods: ["klarna"] });
    expect(first.status).toBe(200);
    const created = await first.json<{ updated: boolean; preferences: PrefsBody }>();
    expect(created.updated).toBe(true);
    expect(created.preferences).toMatchObject({ customer_id: "p_1", merchant_id: shop.merchantId, default_method: "apple_pay", favorite_methods: ["apple_pay", "visa"], excluded_methods: ["klarna"], personalization_enabled: true, cross_merchant_consent: false });
    expect(created.preferences.created_at).toMatch(/Z$/);

    const second = await (await put({ customer_id: "p_1", favorite_methods: ["visa"] })).json<{ preferences: PrefsBody }>();
    expect(second.preferences).toMatchObject({ default_method: "apple_pay", favorite_methods: ["visa"], excluded_methods: ["klarna"] });
    expect(second.preferences.created_at).toBe(created.preferences.created_at);

    const third = await (await put({ customer_id: "p_1", default_method: null })).json<{ preferences: PrefsBody }>();
    expect(third.preferences).toMatchObject({ default_method: null, favorite_methods: ["visa"], excluded_methods: ["klarna"] });
    expect(await (await get("p_1")).json<PrefsBody>()).toMatchObject({ default_method: null, favorite_methods: ["visa"], excluded_methods: ["klarna"] });
  });

  it("appends one consent_log row per change of a consent flag, none when nothing changes", async () => {
    await put({ customer_id: "c_1", personalization_enabled: true }); // the default: no change
    expect(await consentRows("c_1")).toEqual([]);
    await put({ customer_id: "c_1", cross_merchant_consent: true, personalization_enabled: false });
    await put({ customer_id: "c_1", cross_merchant_consent: true }); // unchanged
    await put({ customer_id: "c_1", personalization_enabled: true });
    await put({ customer_id: "c_1", cross_merchant_consent: false, favorite_methods: ["visa"] });
    expect(await consentRows("c_1")).toEqual([
      { consent_type: "personalization", action: "revoked" },
      { consent_type: "cross_merchant", action: "granted" },
      { consent_type: "personalization", action: "granted" },
      { consent_type: "cross_merchant", action: "revoked" },
    ]);
  });

  it("writes nothing, consent included, when the change is rejected", async () => {
    const res = await put({ customer_id: "c_2", cross_merchant_consent: true, default_method: "bitcoin" });
    await expectError(res, 400, "VALIDATION_ERROR");
    expect(await consentRows("c_2")).toEqual([]);
    expect(await (await get("c_2")).json<PrefsBody>()).toMatchObject({ cross_merchant_consent: false, created_at: null });
  });

  it.each([
    [{ default_method: "Visa!" }, "default_method"],
    [{ default_method: "bitcoin" }, "default_method"], // not enabled for the merchant
    [{ favorite_methods: ["visa", "bitcoin"] }, "favorite_methods.1"],
    [{ excluded_methods: ["sofort"] }, "excluded_methods.0"],
    [{ favorite_methods: ["visa", "visa"] }, "favorite_methods"],
    [{ excluded_methods: Array.from({ length: 51 }, (_, i) => `m${i}`) }, "excluded_methods"],
    [{ favorite_methods: "visa" }, "favorite_methods"],
    [{ personalization_enabled: "yes" }, "personalization_enabled"],
    [{ cross_merchant_consent: 1 }, "cross_merchant_consent"],
    [{ default_method: "visa", excluded_methods: ["visa"] }, "default_method"],
    [{ favorite_methods: ["paypal"], excluded_methods: ["paypal"] }, "favorite_methods.0"],
    [{ nickname: "x" }, "nickname"],
  ])("rejects %j at %s", async (fields, path) => {
    const body = await expectError(await put({ customer_id: "v_1", ...fields }), 400, "VALIDATION_ERROR");
    expect(body.error.details!.map((d) => d.path)).toContain(path);
  });

  it("judges conflicts on the merged result", async () => {
    expect((await put({ customer_id: "v_2", default_method: "visa", favorite_methods: ["paypal"] })).status).toBe(200);
    const a = await expectError(await put({ customer_id: "v_2", excluded_methods: ["mastercard", "visa"] }), 400, "VALIDATION_ERROR");
    expect(a.error.details!.map((d) => d.path)).toContain("excluded_methods.1");
    const b = await expectError(await put({ customer_id: "v_2", excluded_methods: ["paypal"] }), 400, "VALIDATION_ERROR");
    expect(b.error.details!.map((d) => d.path)).toContain("excluded_methods.0");
  });

  it("while a deletion is pending: judged and answered as for a new customer, still stored, consent logged against the stored value", async () => {
    const id = "gone_1";
    expect((await put({ customer_id: id, personalization_enabled: false, default_method: "paypal", excluded_methods: ["klarna"] })).status).toBe(200);
    const createdAt = "2025-06-01T10:00:00.000Z";
    await env.DB.prepare("UPDATE preferences SET created_at = ? WHERE merchant_id = ? AND customer_ref = ?").bind(createdAt, shop.merchantId, await refOf(id)).run();
    expect((await del(id)).status).toBe(202);

    // klarna is excluded in the hidden row: judged against it, this would be a 400.
    const res = await put({ customer_id: id, favorite_methods: ["klarna"] });
    expect(res.status).toBe(200);
    const { preferences } = await res.json<{ preferences: PrefsBody }>();
    expect(preferences).toEqual({
      customer_id: id, merchant_id: shop.merchantId, default_method: null, favorite_methods: ["klarna"], excluded_methods: [],
      personalization_enabled: true, cross_merchant_consent: false, created_at: expect.stringMatching(/Z$/), updated_at: preferences.created_at, last_used_at: null,
    });
    expect(preferences.created_at).not.toBe(createdAt);
    expect(await (await get(id)).json<PrefsBody>()).toMatchObject({ default_method: null, favorite_methods: [], personalization_enabled: true, created_at: null, updated_at: null });

    // The stored value is false already: the opt-out is answered, and the consent log (proof of consent) does not repeat it.
    const optOut = await (await put({ customer_id: id, personalization_enabled: false })).json<{ preferences: PrefsBody }>();
    expect(optOut.preferences).toMatchObject({ personalization_enabled: false, default_method: null, favorite_methods: [], excluded_methods: [] });
    expect(await consentRows(id)).toEqual([{ consent_type: "personalization", action: "revoked" }]);
    await put({ customer_id: id, cross_merchant_consent: true });
    expect(await consentRows(id)).toEqual([{ consent_type: "personalization", action: "revoked" }, { consent_type: "cross_merchant", action: "granted" }]);

    // Stored all along: after a restore the method fields are the set that was validated, the flags what was sent.
    expect((await restore(id)).status).toBe(200);
    expect(await (await get(id)).json<PrefsBody>()).toMatchObject({
      default_method: null, favorite_methods: ["klarna"], excluded_methods: [], personalization_enabled: false, cross_merchant_consent: true, created_at: createdAt,
    });
  });

  it("while a deletion is pending, a change of consent alone leaves the hidden method preferences stored", async () => {
    const id = "gone_2";
    await put({ customer_id: id, default_method: "paypal", favorite_methods: ["paypal"] });
    expect((await del(id)).status).toBe(202);
    const { preferences } = await (await put({ customer_id: id, personalization_enabled: false })).json<{ preferences: PrefsBody }>();
    expect(preferences).toMatchObject({ default_method: null, favorite_methods: [], personalization_enabled: false });
    expect((await restore(id)).status).toBe(200);
    expect(await (await get(id)).json<PrefsBody>()).toMatchObject({ default_method: "paypal", favorite_methods: ["paypal"], personalization_enabled: false });
  });

  it("requires customer_id, rejects bad JSON and another merchant's id", async () => {
    const missing = await expectError(await put({ default_method: "visa" }), 400, "VALIDATION_ERROR");
    expect(missing.error.details!.map((d) => d.path)).toContain("customer_id");
    await expectError(await api(shop.secretKey, "/v1/personalize/preferences", { method: "PUT", body: "{nope", headers: { "Content-Type": "application/json" } }), 400, "INVALID_JSON");
    await expectError(await put({ customer_id: "x", merchant_id: "other_shop" }), 403, "MERCHANT_MISMATCH");
    await expectError(await api(shop.publishableKey, "/v1/personalize/preferences?customer_id=x"), 403, "KEY_NOT_ALLOWED");
  });
});

describe("PUT /v1/personalize/preferences sent concurrently: the rules hold on what is stored", () => {
  afterEach(() => vi.restoreAllMocks());
  type Methods = { default_method: string | null; favorite_methods: string[]; excluded_methods: string[] };
  const stored = async (id: string) => get(id).then((r) => r.json<Methods>());

  it("{default: visa} and {excluded: [visa]} at once: one is stored, the other judged on it (400), never both", async () => {
    for (let i = 0; i < 5; i++) {
      const id = `race_def_${i}`;
      const answers = await Promise.all([put({ customer_id: id, default_method: "visa" }), put({ customer_id: id, excluded_methods: ["visa"] })]);
      const p = await stored(id);
      expect(p.default_method === "visa" && p.excluded_methods.includes("visa")).toBe(false);
      expect(answers.map((a) => a.status).sort()).toEqual([200, 400]);
    }
  });

  it("{favorites: [paypal]} and {excluded: [paypal]} at once: never both", async () => {
    for (let i = 0; i < 5; i++) {
      const id = `race_fav_${i}`;
      const answers = await Promise.all([put({ customer_id: id, favorite_methods: ["paypal"] }), put({ customer_id: id, excluded_methods: ["paypal"] })]);
      const p = await stored(id);
      expect(p.favorite_methods.includes("paypal") && p.excluded_methods.includes("paypal")).toBe(false);
      expect(answers.map((a) => a.status).sort()).toEqual([200, 400]);
    }
  });

  it("compatible changes sent at once are all kept, and the consent log alternates and ends in the stored state", async () => {
    const id = "race_merge";
    const answers = await Promise.all([
      put({ customer_id: id, default_method: "visa" }),
      put({ customer_id: id, favorite_methods: ["apple_pay"] }),
      put({ customer_id: id, excluded_methods: ["klarna"] }),
      put({ customer_id: id, personalization_enabled: false }),
      put({ customer_id: id, cross_merchant_consent: true }),
    ]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(await (await get(id)).json<PrefsBody>()).toMatchObject({
      default_method: "visa", favorite_methods: ["apple_pay"], excluded_methods: ["klarna"], personalization_enabled: false, cross_merchant_consent: true,
    });
    expect((await consentRows(id)).map((r) => `${r.consent_type}:${r.action}`).sort()).toEqual(["cross_merchant:granted", "personalization:revoked"]);
  });

  it("a write judged on method fields that changed since is not made, its consent rows included", async () => {
    const { savePreferences } = await import("../../src/storage/preferences");
    const id = "race_cas";
    expect((await put({ customer_id: id, excluded_methods: ["visa"] })).status).toBe(200);
    const ref = await refOf(id);
    const judgedOnDefaults = { default_method: null, favorite_methods: [], excluded_methods: [] };
    const patch = { default_method: "visa", personalization_enabled: false };
    expect(await savePreferences(env.DB, shop.merchantId, ref, patch, new Date().toISOString(), judgedOnDefaults, false)).toBeNull();
    expect(await stored(id)).toMatchObject({ default_method: null, excluded_methods: ["visa"] });
    expect(await consentRows(id)).toEqual([]);
    // Judged on what is stored, it is written.
    const judged = { default_method: null, favorite_methods: [], excluded_methods: ["visa"] };
    expect(await savePreferences(env.DB, shop.merchantId, ref, { favorite_methods: ["paypal"] }, new Date().toISOString(), judged, false)).toMatchObject({ favorite_methods: ["paypal"] });
  });

  it("a write judged under a deletion state that changed since is not made, consent alone included", async () => {
    const { savePreferences } = await import("../../src/storage/preferences");
    const id = "race_cas_deletion";
    expect((await put({ customer_id: id, default_method: "visa" })).status).toBe(200);
    expect((await del(id)).status).toBe(202);
    const ref = await refOf(id);
    const judged = { default_method: "visa", favorite_methods: [], excluded_methods: [] };
    expect(await savePreferences(env.DB, shop.merchantId, ref, { personalization_enabled: false }, new Date().toISOString(), judged, false)).toBeNull();
    expect(await consentRows(id)).toEqual([]);
    expect(await savePreferences(env.DB, shop.merchantId, ref, { personalization_enabled: false }, new Date().toISOString(), judged, true)).toMatchObject({ personalization_enabled: false });
  });

  /** Runs `between` once, after the PUT's read (its 1st D1 batch) and before its write (the 2nd). */
  const betweenReadAndWrite = (between: () => Promise<void>) => {
    const realBatch = env.DB.batch.bind(env.DB);
    let calls = 0;
    vi.spyOn(env.DB, "batch").mockImplementation(async (statements: D1PreparedStatement[]) => {
      if (++calls === 2) {
        vi.restoreAllMocks();
        await between();
      }
      return realBatch(statements);
    });
  };

  it("a DELETE committed between a PUT's read and its write: the PUT answers as for a new customer, no hidden value in it", async () => {
    const id = "race_put_across_delete";
    expect((await put({ customer_id: id, default_method: "paypal", excluded_methods: ["klarna"] })).status).toBe(200);
    let deleted = 0;
    betweenReadAndWrite(async () => {
      deleted = (await del(id)).status;
    });
    const res = await put({ customer_id: id, favorite_methods: ["visa"] });
    expect(deleted).toBe(202);
    expect(res.status).toBe(200);
    // API.md §3: from the DELETE on, the customer's data is not returned, preferences read as defaults.
    expect((await res.json<{ preferences: PrefsBody }>()).preferences).toMatchObject({ default_method: null, favorite_methods: ["visa"], excluded_methods: [] });
  });

  it("a restore committed between a PUT's read and its write: the fields the PUT left out keep their restored values", async () => {
    const id = "race_put_across_restore";
    expect((await put({ customer_id: id, default_method: "paypal", excluded_methods: ["klarna"] })).status).toBe(200);
    expect((await del(id)).status).toBe(202);
    let restored = 0;
    betweenReadAndWrite(async () => {
      restored = (await restore(id)).status;
    });
    const res = await put({ customer_id: id, favorite_methods: ["visa"] });
    expect(restored).toBe(200);
    expect(res.status).toBe(200);
    const expected = { default_method: "paypal", favorite_methods: ["visa"], excluded_methods: ["klarna"] };
    expect((await res.json<{ preferences: PrefsBody }>()).preferences).toMatchObject(expected);
    expect(await stored(id)).toMatchObject(expected);
  });

  it("an opt-out alone is accepted even when an older write left the method fields breaking the rules", async () => {
    const id = "race_left_bad";
    expect((await put({ customer_id: id, default_method: "visa" })).status).toBe(200);
    await env.DB.prepare("UPDATE preferences SET excluded_methods = '[\"visa\"]' WHERE merchant_id = ? AND customer_ref = ?").bind(shop.merchantId, await refOf(id)).run();
    const res = await put({ customer_id: id, personalization_enabled: false });
    expect(res.status).toBe(200);
    expect(await (await get(id)).json<PrefsBody>()).toMatchObject({ personalization_enabled: false });
    // A change of method fields is still judged on the whole merged result.
    await expectError(await put({ customer_id: id, favorite_methods: ["paypal"] }), 400, "VALIDATION_ERROR");
  });
});

describe("PUT /v1/personalize/preferences when KV refuses the cache update (e.g. a second write to one key within a second)", () => {
  afterEach(() => vi.restoreAllMocks());
  const cached = async (merchantId: string, customerId: string) => env.CACHE.get<Profile>(profileKey(merchantId, await refOf(customerId)), "json");

  it("answers 503 UNAVAILABLE with the change saved; the same PUT retried answers 200, logs no second consent row and refreshes the cache", async () => {
    const id = "cus_kv_refuses";
    expect((await put({ customer_id: id, default_method: "visa" })).status).toBe(200);
    await readProfile(env, shop.merchantId, await refOf(id), { crossMerchant: false });
    const change = { customer_id: id, default_method: "paypal", personalization_enabled: false };
    vi.spyOn(env.CACHE, "put").mockRejectedValueOnce(new Error("KV PUT failed: 429 Too Many Requests"));
    vi.spyOn(env.CACHE, "delete").mockRejectedValueOnce(new Error("KV DELETE failed: 429 Too Many Requests"));
    vi.spyOn(console, "error").mockImplementation(() => {});
    await expectError(await put(change), 503, "UNAVAILABLE");
    expect((await (await get(id)).json<PrefsBody>()).default_method).toBe("paypal"); // saved (D1 is the truth)
    expect((await cached(shop.merchantId, id))?.preferences?.default_method).toBe("visa"); // the stale entry a /methods could read

    const retry = await put(change);
    expect(retry.status).toBe(200);
    expect((await cached(shop.merchantId, id))?.preferences).toMatchObject({ default_method: "paypal", personalization_enabled: false });
    expect(await consentRows(id)).toEqual([{ consent_type: "personalization", action: "revoked" }]);
  });

  it("a consent change whose peers' caches cannot be dropped is 503 too, and the retry (same value) drops them", async () => {
    const id = "cus_kv_refuses_peers";
    const peer = await createMerchant({ features: { targeted_offers: false, cross_merchant: true } });
    for (const m of [shop, peer]) {
      const res = await api(m.secretKey, "/v1/personalize/preferences", { method: "PUT", body: JSON.stringify({ customer_id: id, cross_merchant_consent: true }) });
      expect(res.status).toBe(200);
    }
    await readProfile(env, peer.merchantId, await refOf(id), { crossMerchant: true });
    expect(await cached(peer.merchantId, id)).not.toBeNull();
    const peerKey = profileKey(peer.merchantId, await refOf(id));
    const realDelete = env.CACHE.delete.bind(env.CACHE);
    vi.spyOn(env.CACHE, "delete").mockImplementation(async (key: string) => {
      if (key === peerKey) throw new Error("KV DELETE failed: 429 Too Many Requests");
      return realDelete(key);
    });
    vi.spyOn(console, "error").mockImplementation(() => {});
    await expectError(await put({ customer_id: id, cross_merchant_consent: false }), 503, "UNAVAILABLE");
    expect(await cached(peer.merchantId, id)).not.toBeNull(); // the peer could still count this merchant's payments
    vi.restoreAllMocks();
    expect((await put({ customer_id: id, cross_merchant_consent: false })).status).toBe(200);
    expect(await cached(peer.merchantId, id)).toBeNull();
  });
});

describe("last_used_at", () => {
  it("counts payments stored before the customer's first PUT, and is then kept by the payments alone", async () => {
    const id = "lu_before_put";
    const earlier = new Date(Date.now() - 2 * 3_600_000).toISOString();
    const latest = new Date(Date.now() - 3_600_000).toISOString();
    await recordPayments(shop.merchantId, id, [{ method_id: "visa", occurred_at: earlier }, { method_id: "paypal", occurred_at: latest, device_type: "desktop" }]);
    const res = await put({ customer_id: id, favorite_methods: ["visa"] });
    expect(res.status).toBe(200);
    expect((await res.json<{ preferences: PrefsBody }>()).preferences.last_used_at).toBe(latest);
    expect((await (await get(id)).json<PrefsBody>()).last_used_at).toBe(latest);
    // A later PUT is not a payment: last_used_at stays.
    await put({ customer_id: id, default_method: "visa" });
    expect((await (await get(id)).json<PrefsBody>()).last_used_at).toBe(latest);
    // Another customer's payments, or this customer's at another merchant, never count.
    const other = await createMerchant();
    await recordPayments(other.merchantId, "lu_fresh", [{ method_id: "visa", occurred_at: latest }]);
    expect((await (await put({ customer_id: "lu_fresh", favorite_methods: ["visa"] })).json<{ preferences: PrefsBody }>()).preferences.last_used_at).toBeNull();
  });
});
