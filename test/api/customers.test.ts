import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { customerRef } from "../../src/crypto/pseudonym";
import worker from "../../src/index";
import { purgeDueCustomers } from "../../src/jobs/purge";
import type { FeedbackMessage } from "../../src/schemas/feedback";
import { crossMerchantPeers } from "../../src/storage/consent";
import { loadProfile, profileKey, readProfile } from "../../src/storage/profile";
import { customerRowCounts, DAY_MS, refOf, seedAnalytics, seedConsent, seedDeadLetter, seedEvent, seedPreferences } from "../helpers/customerData";
import { admin, api, createMerchant, expectError, type TestMerchant } from "../helpers/fixtures";
import { countD1Queries } from "../helpers/queryCount";

const path = (id: string, suffix = "") => `/v1/personalize/customers/${encodeURIComponent(id)}${suffix}`;
const del = (m: TestMerchant, id: string) => api(m.secretKey, path(id), { method: "DELETE" });
const restore = (m: TestMerchant, id: string) => api(m.secretKey, path(id, "/restore"), { method: "POST" });
const exportOf = (m: TestMerchant, id: string) => api(m.secretKey, path(id, "/export"));

interface ExportBody {
  customer_id: string;
  merchant_id: string;
  status: string;
  purge_after: string | null;
  preferences: { default_method: string | null; favorite_methods: string[] } | null;
  usage_events: { method_id: string; amount: number; occurred_at: string }[];
  usage_summary: { bucket: string; method_id: string; uses: number }[];
  consent_log: { consent_type: string; action: string; timestamp: string }[];
  analytics: { decisions: Record<string, unknown>[]; conversions: Record<string, unknown>[]; offer_impressions: Record<string, unknown>[] };
  undelivered_messages: { queue: string; received_at: string; truncated: boolean; body: string }[];
}

async function auditActions(m: TestMerchant, id: string): Promise<{ action: string; actor: string }[]> {
  const { results } = await env.DB.prepare("SELECT action, actor FROM data_rights_audit WHERE merchant_id = ? AND customer_ref = ? ORDER BY id")
    .bind(m.merchantId, await refOf(id))
    .all<{ action: string; actor: string }>();
  return results;
}

const profileOf = async (m: TestMerchant, id: string) => loadProfile(env.DB, m.merchantId, await refOf(id), false);

let a: TestMerchant;
let b: TestMerchant;
beforeAll(async () => {
  a = await createMerchant();
  b = await createMerchant();
});

describe("DELETE /v1/personalize/customers/{customer_id}", () => {
  it("answers 202 pending_deletion with purge_after 30 days out, hides the customer and clears the cache", async () => {
    const id = "cus_delete_1";
    await seedPreferences(a.merchantId, id);
    await seedEvent(a.merchantId, id, { method_id: "paypal" });
    const ref = await refOf(id);
    await readProfile(env, a.merchantId, ref, { crossMerchant: false }); // warm the KV cache
    expect(await env.CACHE.get(profileKey(a.merchantId, ref))).not.toBeNull();

    const before = Date.now();
    const res = await del(a, id);
    expect(res.status).toBe(202);
    const body = await res.json<{ customer_id: string; status: string; purge_after: string }>();
    expect(body.customer_id).toBe(id);
    expect(body.status).toBe("pending_deletion");
    const purgeAfter = Date.parse(body.purge_after);
    expect(purgeAfter).toBeGreaterThanOrEqual(before + 30 * DAY_MS);
    expect(purgeAfter).toBeLessThanOrEqual(Date.now() + 30 * DAY_MS);

    expect(await env.CACHE.get(profileKey(a.merchantId, ref))).toBeNull();
    expect((await profileOf(a, id)).pending_deletion).toBe(true);
    expect(await auditActions(a, id)).toEqual([{ action: "delete", actor: a.secretKeyId }]);
    // Nothing is erased yet: the grace period allows a restore.
    expect((await customerRowCounts(a.merchantId, id)).usage_events).toBe(1);
  });

  it("is idempotent: a repeated request keeps the first purge_after and audits once", async () => {
    const id = "cus_delete_twice";
    const first = await (await del(a, id)).json<{ purge_after: string }>();
    await new Promise((r) => setTimeout(r, 5));
    const res = await del(a, id);
    expect(res.status).toBe(202);
    expect((await res.json<{ purge_after: string }>()).purge_after).toBe(first.purge_after);
    expect((await auditActions(a, id)).map((r) => r.action)).toEqual(["delete"]);
  });

  it("accepts a customer it has never seen (erasure can be requested for anyone)", async () => {
    const res = await del(a, "cus_never_seen@example.com");
    expect(res.status).toBe(202);
    expect((await res.json<{ status: string }>()).status).toBe("pending_deletion");
  });

  it("clears the cached profiles of merchants that read this customer cross-merchant", async () => {
    const id = "cus_cross";
    const ref = await refOf(id);
    await seedPreferences(a.merchantId, id, { cross_merchant_consent: true });
    await seedPreferences(b.merchantId, id, { cross_merchant_consent: true });
    await readProfile(env, b.merchantId, ref, { crossMerchant: true });
    expect(await env.CACHE.get(profileKey(b.merchantId, ref))).not.toBeNull();
    expect((await del(a, id)).status).toBe(202);
    expect(await env.CACHE.get(profileKey(b.merchantId, ref))).toBeNull();
    // B's own data and state are untouched.
    expect((await profileOf(b, id)).pending_deletion).toBe(false);
    expect((await customerRowCounts(b.merchantId, id)).preferences).toBe(1);
  });
});

describe("cross-merchant peers' cached profiles, past one page", () => {
  /** `n` other merchants where the customer granted cross-merchant consent (preferences rows only), each with a cached profile. */
  async function seedPeers(id: string, prefix: string, n: number): Promise<string[]> {
    const ref = await refOf(id);
    await env.DB.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?3)
       INSERT INTO preferences (merchant_id, customer_ref, favorite_methods, excluded_methods, personalization_enabled, cross_merchant_consent, created_at, updated_at)
       SELECT ?1 || printf('%04d', i), ?2, '[]', '[]', 1, 1, ?4, ?4 FROM n`,
    ).bind(prefix, ref, n, new Date().toISOString()).run();
    const peers = Array.from({ length: n }, (_, i) => `${prefix}${String(i + 1).padStart(4, "0")}`);
    await Promise.all(peers.map((p) => env.CACHE.put(profileKey(p, ref), "{}")));
    return peers;
  }
  const cached = async (peers: string[], ref: string) => (await Promise.all(peers.map((p) => env.CACHE.get(profileKey(p, ref))))).filter((v) => v !== null).length;

  it("a deletion clears the cached profile at every one of 150 consenting merchants (pages of 100), and so does a restore", async () => {
    const id = "cus_many_peers";
    const ref = await refOf(id);
    await seedPreferences(a.merchantId, id, { cross_merchant_consent: true });
    const peers = await seedPeers(id, "m_peer_del_", 150);
    expect(await cached(peers, ref)).toBe(150);
    expect((await del(a, id)).status).toBe(202);
    expect(await cached(peers, ref)).toBe(0);

    await Promise.all(peers.map((p) => env.CACHE.put(profileKey(p, ref), "{}")));
    expect((await restore(a, id)).status).toBe(200);
    expect(await cached(peers, ref)).toBe(0);
  });

  it("a PUT of cross_merchant_consent clears every one of 520 consenting merchants' cached profiles", async () => {
    const id = "cus_many_peers_put";
    const ref = await refOf(id);
    const peers = await seedPeers(id, "m_peer_put_", 520); // it stopped at 500 before
    const res = await api(a.secretKey, "/v1/personalize/preferences", { method: "PUT", body: JSON.stringify({ customer_id: id, cross_merchant_consent: false }) });
    expect(res.status).toBe(200);
    expect(await cached(peers, ref)).toBe(0);
  });

  it("crossMerchantPeers pages by merchant id, each statement bounded, up to its maximum", async () => {
    const id = "cus_paged_peers";
    const ref = await refOf(id);
    const peers = await seedPeers(id, "m_peer_page_", 7);
    await seedPreferences(a.merchantId, id, { cross_merchant_consent: true }); // the asking merchant is never its own peer
    await seedPreferences("m_peer_page_none", id, { cross_merchant_consent: false }); // no consent there: not a peer
    const { result, queries } = await countD1Queries(() => crossMerchantPeers(env.DB, a.merchantId, ref, { pageSize: 2 }));
    expect(result).toEqual({ peers, complete: true });
    expect(queries).toBe(4); // 2 + 2 + 2 + 1
    expect(await crossMerchantPeers(env.DB, a.merchantId, ref, { pageSize: 2, max: 7 })).toEqual({ peers, complete: true });
    expect(await crossMerchantPeers(env.DB, a.merchantId, ref, { pageSize: 2, max: 5 })).toEqual({ peers: peers.slice(0, 5), complete: false });
    expect(await crossMerchantPeers(env.DB, a.merchantId, ref, { pageSize: 3, max: 6 })).toEqual({ peers: peers.slice(0, 6), complete: false });
    // A first page read elsewhere (in the deletion's batch) is continued after its last merchant.
    expect(await crossMerchantPeers(env.DB, a.merchantId, ref, { pageSize: 2, firstPage: peers.slice(0, 2) })).toEqual({ peers, complete: true });
  });
});

describe("hidden everywhere, then restored (through /preferences and /methods)", () => {
  interface MethodsBody { methods: { method_id: string }[]; personalized: boolean; fallback_reason?: string }
  const methods = (id: string) => api(a.secretKey, `/v1/personalize/methods?customer_id=${id}&country=NL&currency=EUR&device_type=mobile`);
  const prefs = (id: string) => api(a.secretKey, `/v1/personalize/preferences?customer_id=${id}`);

  it("a pending customer reads as defaults and falls back with customer_deleted; restore brings everything back", async () => {
    const id = "cus_hidden";
    await seedPreferences(a.merchantId, id); // default paypal, favourite paypal, excluded klarna
    for (let i = 0; i < 3; i++) await seedEvent(a.merchantId, id, { method_id: "paypal" });

    const visible = await (await prefs(id)).json<{ default_method: string | null; excluded_methods: string[] }>();
    expect(visible).toMatchObject({ default_method: "paypal", excluded_methods: ["klarna"] });
    const before = await (await methods(id)).json<MethodsBody>();
    expect(before.fallback_reason).not.toBe("customer_deleted");
    expect(before.methods.map((m) => m.method_id)).not.toContain("klarna");

    await del(a, id);
    const hidden = await prefs(id);
    expect(hidden.status).toBe(200);
    expect(await hidden.json()).toMatchObject({ customer_id: id, default_method: null, favorite_methods: [], excluded_methods: [], personalization_enabled: true, updated_at: null });
    const fallback = await (await methods(id)).json<MethodsBody>();
    expect(fallback).toMatchObject({ personalized: false, fallback_reason: "customer_deleted" });
    expect(fallback.methods.map((m) => m.method_id)).toContain("klarna"); // the customer's exclusion is data too: not used

    expect((await restore(a, id)).status).toBe(200);
    expect(await (await prefs(id)).json()).toMatchObject({ default_method: "paypal", excluded_methods: ["klarna"] });
    const after = await (await methods(id)).json<MethodsBody>();
    expect(after.fallback_reason).not.toBe("customer_deleted");
    expect(after.methods.map((m) => m.method_id)).not.toContain("klarna");
  });
});

describe("cache failures", () => {
  afterEach(() => vi.restoreAllMocks());

  it("a deletion whose cache cannot be cleared answers 503; the retry is idempotent and clears it", async () => {
    const id = "cus_kv_down";
    const ref = await refOf(id);
    await seedPreferences(a.merchantId, id);
    await readProfile(env, a.merchantId, ref, { crossMerchant: false });
    vi.spyOn(env.CACHE, "delete").mockRejectedValueOnce(new Error("KV delete failed"));
    await expectError(await del(a, id), 503, "UNAVAILABLE");
    expect((await profileOf(a, id)).pending_deletion).toBe(true); // recorded all the same
    const retry = await del(a, id);
    expect(retry.status).toBe(202);
    expect(await env.CACHE.get(profileKey(a.merchantId, ref))).toBeNull();
  });

  it("customer and merchant ids . and .. are a 400 wherever they come (no path could ever name them to export or erase)", async () => {
    for (const id of [".", ".."]) {
      const put = await api(a.secretKey, "/v1/personalize/preferences", { method: "PUT", body: JSON.stringify({ customer_id: id, favorite_methods: ["visa"] }) });
      expect((await expectError(put, 400, "VALIDATION_ERROR")).error.details?.map((d) => d.path)).toEqual(["customer_id"]);
      const fb = await api(a.secretKey, "/v1/personalize/feedback", { method: "POST", body: JSON.stringify({ customer_id: id, method_id: "visa" }) });
      await expectError(fb, 400, "VALIDATION_ERROR");
      await expectError(await api(a.secretKey, `/v1/personalize/methods?customer_id=${id}`), 400, "VALIDATION_ERROR");
      const created = await admin("/v1/admin/merchants", { method: "POST", body: JSON.stringify({ merchant_id: id, name: "Dots", tier: "starter", methods: ["visa"] }) });
      expect((await expectError(created, 400, "VALIDATION_ERROR")).error.details?.map((d) => d.path)).toEqual(["merchant_id"]);
    }
    // Dots inside an id are fine.
    expect((await api(a.secretKey, "/v1/personalize/preferences", { method: "PUT", body: JSON.stringify({ customer_id: "cus..x.", favorite_methods: ["visa"] }) })).status).toBe(200);
  });

  it("a customer . or .. stored before they were refused is exported, erased and restored through the admin API, the id in the body", async () => {
    const legacy = (m: TestMerchant, action: string, customerId: unknown) =>
      admin(`/v1/admin/merchants/${m.merchantId}/customers/${action}`, { method: "POST", body: JSON.stringify({ customer_id: customerId }) });
    for (const id of [".", ".."]) {
      // Rows as the API stored them before the refusal: keyed by the pseudonym of the id.
      await seedPreferences(a.merchantId, id);
      await seedEvent(a.merchantId, id, { method_id: "paypal" });
      // The merchant routes cannot name the customer: URL parsing removes the dot segment.
      expect((await exportOf(a, id)).status).not.toBe(200);

      const exported = await legacy(a, "export", id);
      expect(exported.status).toBe(200);
      const body = await exported.json<ExportBody>();
      expect(body).toMatchObject({ customer_id: id, merchant_id: a.merchantId, status: "active", preferences: { default_method: "paypal" } });
      expect(body.usage_events.map((e) => e.method_id)).toEqual(["paypal"]);

      const erased = await legacy(a, "delete", id);
      expect(erased.status).toBe(202);
      expect(await erased.json()).toMatchObject({ customer_id: id, status: "pending_deletion" });
      expect((await profileOf(a, id)).pending_deletion).toBe(true);
      const restored = await legacy(a, "restore", id);
      expect(restored.status).toBe(200);
      expect(await restored.json()).toEqual({ customer_id: id, status: "active" });
      expect((await legacy(a, "delete", id)).status).toBe(202);
      expect((await auditActions(a, id)).map((r) => `${r.action}:${r.actor}`)).toEqual(["export:admin", "delete:admin", "restore:admin", "delete:admin"]);

      // Past the grace period the purge erases the rows like any other customer's.
      await env.DB.prepare("UPDATE customer_deletions SET purge_after = ? WHERE merchant_id = ? AND customer_ref = ?").bind(new Date(Date.now() - 1000).toISOString(), a.merchantId, await refOf(id)).run();
      await purgeDueCustomers(env, new Date());
      expect(await customerRowCounts(a.merchantId, id)).toMatchObject({ preferences: 0, usage_events: 0, method_stats: 0 });
      expect(await (await legacy(a, "export", id)).json()).toMatchObject({ customer_id: id, status: "purged", preferences: null, usage_events: [] });
    }
    // Only these two ids: any other has its path, and a new . or .. is still refused everywhere else.
    const other = await expectError(await legacy(a, "delete", "cus_1"), 400, "VALIDATION_ERROR");
    expect(other.error.details?.map((d) => d.path)).toEqual(["customer_id"]);
    await expectError(await legacy(a, "export", undefined), 400, "VALIDATION_ERROR");
    await expectError(await admin("/v1/admin/merchants/m_nobody_here/customers/export", { method: "POST", body: JSON.stringify({ customer_id: "." }) }), 404, "NOT_FOUND");
    await expectError(await api(a.secretKey, "/v1/admin/merchants/x/customers/export", { method: "POST", body: "{}" }), 401, "INVALID_ADMIN_TOKEN");
  });

  it("erased again after the purge and then restored, the customer is back to the purged tombstone: an event received before the purge is still not stored", async () => {
    const id = "cus_reopened";
    const ref = await customerRef(env.PII_KEY, id);
    const receivedAt = new Date(Date.now() - 60_000).toISOString();
    const inFlight: FeedbackMessage = {
      v: 1, merchant_id: a.merchantId, customer_ref: ref, event_id: "ev_reopened", method_id: "visa", amount: 2500, currency: "EUR",
      device_type: "mobile", location_country: "NL", offer_id: null, occurred_at: receivedAt, received_at: receivedAt, decision: null,
    };
    const { purge_after } = await (await del(a, id)).json<{ purge_after: string }>();
    await purgeDueCustomers(env, new Date(Date.parse(purge_after) + 1000));
    const row = () => env.DB.prepare("SELECT status, requested_at, purge_after, purged_at, reopened_from FROM customer_deletions WHERE merchant_id = ? AND customer_ref = ?").bind(a.merchantId, ref).first<Record<string, string | null>>();
    const tombstone = await row();
    expect(tombstone).toMatchObject({ status: "purged", reopened_from: null });

    expect((await del(a, id)).status).toBe(202); // the merchant repeats its request
    expect(await row()).toMatchObject({ status: "pending", purged_at: null });
    expect((await restore(a, id)).status).toBe(200);
    expect(await row()).toEqual(tombstone);
    await expectError(await restore(a, id), 404, "NOT_FOUND");

    const batch = createMessageBatch("feedback-events-dev", [{ id: "reopened_1", timestamp: new Date(), attempts: 3, body: inFlight }]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env, ctx);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toEqual(["reopened_1"]);
    const stored = await env.DB.prepare("SELECT count(*) AS n FROM usage_events WHERE merchant_id = ? AND customer_ref = ?").bind(a.merchantId, ref).first<{ n: number }>();
    expect(stored?.n).toBe(0);
    expect((await (await exportOf(a, id)).json<{ status: string }>()).status).toBe("purged");

    // Reopened and purged again: the new purge is the tombstone, nothing of the old one is kept.
    const again = await (await del(a, id)).json<{ purge_after: string }>();
    await purgeDueCustomers(env, new Date(Date.parse(again.purge_after) + 1000));
    expect(await row()).toMatchObject({ status: "purged", purge_after: again.purge_after, reopened_from: null });
  });

  it("a restore still answers 200 when the cache cannot be cleared (a stale entry only keeps the customer hidden)", async () => {
    const id = "cus_kv_down_restore";
    await del(a, id);
    vi.spyOn(env.CACHE, "delete").mockRejectedValueOnce(new Error("KV delete failed"));
    expect((await restore(a, id)).status).toBe(200);
    expect((await profileOf(a, id)).pending_deletion).toBe(false);
  });
});

describe("POST /v1/personalize/customers/{customer_id}/restore", () => {
  it("brings a pending customer back within the grace period", async () => {
    const id = "cus_restore_1";
    await seedPreferences(a.merchantId, id);
    await del(a, id);
    const ref = await refOf(id);
    await readProfile(env, a.merchantId, ref, { crossMerchant: false }); // caches "pending"
    const res = await restore(a, id);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ customer_id: id, status: "active" });
    expect(await env.CACHE.get(profileKey(a.merchantId, ref))).toBeNull();
    const profile = await profileOf(a, id);
    expect(profile.pending_deletion).toBe(false);
    expect(profile.preferences?.default_method).toBe("paypal");
    expect((await auditActions(a, id)).map((r) => r.action)).toEqual(["delete", "restore"]);
    // Restored means no pending deletion: a second restore has nothing to cancel.
    await expectError(await restore(a, id), 404, "NOT_FOUND");
  });

  it("404 for a customer never deleted", async () => {
    await expectError(await restore(a, "cus_never_deleted"), 404, "NOT_FOUND");
  });

  it("404 once the grace period is over, even before the purge ran", async () => {
    const id = "cus_overdue";
    await del(a, id);
    await env.DB.prepare("UPDATE customer_deletions SET purge_after = ? WHERE merchant_id = ? AND customer_ref = ?")
      .bind(new Date(Date.now() - 1000).toISOString(), a.merchantId, await refOf(id))
      .run();
    await expectError(await restore(a, id), 404, "NOT_FOUND");
    expect((await profileOf(a, id)).pending_deletion).toBe(true);
  });

  it("404 after the purge", async () => {
    const id = "cus_purged";
    await seedEvent(a.merchantId, id);
    await del(a, id);
    const report = await purgeDueCustomers(env, new Date(Date.now() + 31 * DAY_MS));
    expect(report.customers_purged).toBeGreaterThanOrEqual(1);
    await expectError(await restore(a, id), 404, "NOT_FOUND");
  });

  it("404 once the purge has started on the customer, even for a restore sent within the grace period", async () => {
    const id = "cus_restore_during_purge";
    await seedPreferences(a.merchantId, id);
    await seedEvent(a.merchantId, id, { method_id: "paypal" });
    const { purge_after } = await (await del(a, id)).json<{ purge_after: string }>();
    // The purge runs just after purge_after. The restore's request began before it (its clock is the
    // real one, 30 days earlier) and commits between the purge's delete round and its mark.
    const realBatch = env.DB.batch.bind(env.DB);
    let batches = 0;
    let restored: Response | null = null;
    vi.spyOn(env.DB, "batch").mockImplementation(async (statements: D1PreparedStatement[]) => {
      if (++batches === 2) {
        vi.restoreAllMocks();
        restored = await restore(a, id);
      }
      return realBatch(statements);
    });
    await purgeDueCustomers(env, new Date(Date.parse(purge_after) + 1));
    vi.restoreAllMocks();
    await expectError(restored!, 404, "NOT_FOUND");
    expect((await auditActions(a, id)).map((r) => r.action)).toEqual(["delete", "purge"]);
    const exported = await (await exportOf(a, id)).json<ExportBody>();
    expect({ status: exported.status, preferences: exported.preferences, events: exported.usage_events }).toEqual({ status: "purged", preferences: null, events: [] });
  });
});

describe("GET /v1/personalize/customers/{customer_id}/export", () => {
  it("returns everything stored about the customer at this merchant", async () => {
    const id = "cus_export@example.com";
    await seedPreferences(a.merchantId, id, { favorite_methods: ["paypal", "ideal"] });
    await seedEvent(a.merchantId, id, { method_id: "ideal", amount: 1999, occurred_at: new Date(Date.now() - 2 * DAY_MS).toISOString() });
    await seedEvent(a.merchantId, id, { method_id: "paypal", amount: 5000, occurred_at: new Date(Date.now() - DAY_MS).toISOString() });
    await seedConsent(a.merchantId, id);
    await seedEvent(b.merchantId, id, { method_id: "klarna" }); // another merchant's data: never exported here
    await seedAnalytics(a.merchantId, id);
    await seedAnalytics(b.merchantId, id); // the same customer's analytics at another merchant
    await seedAnalytics(a.merchantId, "cus_export_neighbour"); // another customer at this merchant
    await seedDeadLetter(a.merchantId, id);
    await seedDeadLetter(b.merchantId, id);
    await seedDeadLetter(null, id); // a letter whose body named no merchant: cannot be told to be A's

    const res = await exportOf(a, id);
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toMatch(/application\/json/);
    const body = await res.json<ExportBody>();
    expect(body.customer_id).toBe(id);
    expect(body.merchant_id).toBe(a.merchantId);
    expect(body.status).toBe("active");
    expect(body.purge_after).toBeNull();
    expect(body.preferences?.favorite_methods).toEqual(["paypal", "ideal"]);
    expect(body.usage_events.map((e) => [e.method_id, e.amount])).toEqual([["ideal", 1999], ["paypal", 5000]]);
    expect(body.usage_summary.filter((s) => s.bucket === "*").map((s) => s.method_id).sort()).toEqual(["ideal", "paypal"]);
    expect(body.consent_log).toEqual([{ consent_type: "personalization", action: "granted", timestamp: expect.any(String) }]);
    // The raw analytics facts (migration 0005), every column but the merchant and the pseudonym.
    const [decision] = body.analytics.decisions;
    expect(body.analytics.decisions).toEqual([{
      decision_key: expect.stringMatching(/^dk_/), decided_at: expect.stringMatching(/Z$/), arm: "treatment", personalized: true, fallback_reason: null,
      ranked: ["visa"], device_type: "mobile", country: "NL", currency: "EUR", cache: "miss",
    }]);
    expect(body.analytics.conversions).toEqual([{
      decision_key: decision!.decision_key, event_id: `evt_${String(decision!.decision_key)}`, arm: "treatment", fallback_reason: null, method_id: "visa", rank: 1,
      amount: 100, currency: "EUR", decided_at: expect.stringMatching(/Z$/), occurred_at: expect.stringMatching(/Z$/), ttp_bin: 3,
    }]);
    expect(body.analytics.offer_impressions).toEqual([{ impression_id: `imp_${String(decision!.decision_key)}`, offer_id: "offer_a", shown_at: expect.stringMatching(/Z$/) }]);
    // A message that could not be written yet, with the pseudonym replaced by the merchant's own id.
    expect(body.undelivered_messages).toHaveLength(1);
    expect(body.undelivered_messages[0]).toMatchObject({ queue: "feedback", truncated: false, received_at: expect.stringMatching(/Z$/) });
    expect(JSON.parse(body.undelivered_messages[0]!.body)).toMatchObject({ merchant_id: a.merchantId, customer_ref: id, method_id: "paypal" });
    expect(JSON.stringify({ ...body, undelivered_messages: [] })).not.toContain("customer_ref");
    expect(JSON.stringify(body)).not.toContain(await refOf(id));
    expect(JSON.stringify(body)).not.toContain(b.merchantId);
    expect((await auditActions(a, id)).map((r) => r.action)).toEqual(["export"]);
  });

  it("still exports during the grace period, and keeps only the consent log after the purge", async () => {
    const id = "cus_export_pending";
    await seedPreferences(a.merchantId, id);
    await seedEvent(a.merchantId, id);
    await seedConsent(a.merchantId, id);
    await seedAnalytics(a.merchantId, id);
    await seedDeadLetter(a.merchantId, id);
    const { purge_after } = await (await del(a, id)).json<{ purge_after: string }>();
    const pending = await (await exportOf(a, id)).json<ExportBody>();
    expect(pending.status).toBe("pending_deletion");
    expect(pending.purge_after).toBe(purge_after);
    expect(pending.usage_events).toHaveLength(1);
    expect(pending.preferences).not.toBeNull();
    expect(pending.analytics.decisions).toHaveLength(1);
    expect(pending.undelivered_messages).toHaveLength(1);

    await purgeDueCustomers(env, new Date(Date.parse(purge_after) + 1000));
    const purged = await (await exportOf(a, id)).json<ExportBody>();
    expect(purged.status).toBe("purged");
    expect(purged.preferences).toBeNull();
    expect(purged.usage_events).toEqual([]);
    expect(purged.usage_summary).toEqual([]);
    expect(purged.consent_log).toHaveLength(1);
    expect(purged.analytics).toEqual({ decisions: [], conversions: [], offer_impressions: [] });
    expect(purged.undelivered_messages).toEqual([]);

    // The customer comes back after the purge: what is stored from then on is theirs, and they are active again.
    await seedPreferences(a.merchantId, id, { favorite_methods: ["paypal"] });
    const back = await (await exportOf(a, id)).json<ExportBody>();
    expect(back.status).toBe("active");
    expect(back.purge_after).toBeNull();
    expect(back.preferences).not.toBeNull();
    expect(back.usage_events).toEqual([]);
  });

  it("an unknown customer exports as empty (nothing is stored)", async () => {
    const body = await (await exportOf(a, "cus_nobody")).json<ExportBody>();
    expect(body).toMatchObject({ customer_id: "cus_nobody", status: "active", preferences: null, usage_events: [], usage_summary: [], consent_log: [] });
    expect(body.analytics).toEqual({ decisions: [], conversions: [], offer_impressions: [] });
    expect(body.undelivered_messages).toEqual([]);
  });
});

describe("merchant isolation", () => {
  it("merchant B never sees or affects merchant A's customer with the same id", async () => {
    const id = "cus_shared_id";
    await seedPreferences(a.merchantId, id);
    await seedEvent(a.merchantId, id);
    await del(a, id);

    // B cannot restore A's deletion, and B's export shows none of A's data or state.
    await expectError(await restore(b, id), 404, "NOT_FOUND");
    const fromB = await (await exportOf(b, id)).json<ExportBody>();
    expect(fromB).toMatchObject({ merchant_id: b.merchantId, status: "active", preferences: null, usage_events: [] });

    // B deleting its customer does not touch A's pending deletion (first purge_after kept there).
    const aState = await env.DB.prepare("SELECT purge_after FROM customer_deletions WHERE merchant_id = ? AND customer_ref = ?")
      .bind(a.merchantId, await refOf(id)).first<{ purge_after: string }>();
    expect((await del(b, id)).status).toBe(202);
    await expectError(await restore(a, "cus_other"), 404, "NOT_FOUND");
    expect((await restore(b, id)).status).toBe(200);
    expect((await profileOf(a, id)).pending_deletion).toBe(true);
    const aAfter = await env.DB.prepare("SELECT purge_after FROM customer_deletions WHERE merchant_id = ? AND customer_ref = ?")
      .bind(a.merchantId, await refOf(id)).first<{ purge_after: string }>();
    expect(aAfter).toEqual(aState);
  });

  it("merchant_id naming another merchant is 403 MERCHANT_MISMATCH", async () => {
    await expectError(await api(a.secretKey, path("cus_1") + `?merchant_id=${b.merchantId}`, { method: "DELETE" }), 403, "MERCHANT_MISMATCH");
    const ok = await api(a.secretKey, path("cus_1", "/export") + `?merchant_id=${a.merchantId}`);
    expect(ok.status).toBe(200);
  });
});

describe("validation and auth", () => {
  it.each([
    ["a space", "bad id"],
    ["a slash-free but illegal character", "cus#1"],
    ["129 characters", "c".repeat(129)],
  ])("rejects a customer_id with %s (400)", async (_what, id) => {
    const body = await expectError(await del(a, id), 400, "VALIDATION_ERROR");
    expect(body.error.details?.[0]?.path).toBe("customer_id");
    await expectError(await restore(a, id), 400, "VALIDATION_ERROR");
    await expectError(await exportOf(a, id), 400, "VALIDATION_ERROR");
  });

  it("accepts the full customer_id alphabet", async () => {
    const id = "A-z_0.9:user@shop";
    expect((await del(a, id)).status).toBe(202);
    expect((await restore(a, id)).status).toBe(200);
  });

  it("rejects unknown query parameters (400)", async () => {
    const body = await expectError(await api(a.secretKey, path("cus_1") + "?force=1", { method: "DELETE" }), 400, "VALIDATION_ERROR");
    expect(body.error.details).toEqual([{ path: "force", message: "Unknown field" }]);
  });

  it("needs a secret key", async () => {
    await expectError(await api(null, path("cus_1"), { method: "DELETE" }), 401, "MISSING_API_KEY");
    await expectError(await api(a.publishableKey, path("cus_1"), { method: "DELETE" }), 403, "KEY_NOT_ALLOWED");
    await expectError(await api(a.publishableKey, path("cus_1", "/export")), 403, "KEY_NOT_ALLOWED");
    await expectError(await api(a.publishableKey, path("cus_1", "/restore"), { method: "POST" }), 403, "KEY_NOT_ALLOWED");
  });
});
