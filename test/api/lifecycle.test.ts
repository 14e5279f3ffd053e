import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { D1_QUERIES_PER_INVOCATION, QueryBudget } from "../../src/jobs/budget";
import { purgeDueCustomers } from "../../src/jobs/purge";
import { applyRawRetention } from "../../src/jobs/rawRetention";
import { applyRetention, monthsBefore, retentionCutoffs } from "../../src/jobs/retention";
import { ANALYTICS_ROLLUP_CRON, DATA_LIFECYCLE_CRON, QUERY_SHARES, runScheduled } from "../../src/jobs/scheduled";
import { CUSTOMER_DATA_TABLES, KEPT_AFTER_PURGE, RETENTION_RULES } from "../../src/storage/deletions";
import { EXPORTED_TABLES, NOT_EXPORTED } from "../../src/storage/export";
import { loadProfile, profileKey, readProfile } from "../../src/storage/profile";
import { customerTables, DAY_MS, iso, refOf, rowsFor, seedAnalytics, seedConsent, seedDeadLetter, seedEvent, seedPreferences } from "../helpers/customerData";
import { api, createMerchant, type TestMerchant } from "../helpers/fixtures";
import { countD1Queries } from "../helpers/queryCount";

const HOUR_MS = 3_600_000;

/** Runs the worker's own `scheduled` export, as the cron trigger would. */
async function cron(at: number, expression = DATA_LIFECYCLE_CRON): Promise<void> {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ scheduledTime: at, cron: expression }), env, ctx);
  await waitOnExecutionContext(ctx);
}

async function seedCustomer(m: TestMerchant, id: string): Promise<void> {
  await seedPreferences(m.merchantId, id);
  await seedEvent(m.merchantId, id, { method_id: "paypal" });
  await seedEvent(m.merchantId, id, { method_id: "ideal", device_type: "desktop" });
  await seedConsent(m.merchantId, id);
  await seedAnalytics(m.merchantId, id);
  await seedDeadLetter(m.merchantId, id);
}

async function tableCounts(m: TestMerchant, id: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of await customerTables()) out[t] = await rowsFor(t, m.merchantId, id);
  return out;
}

/** `n` raw rows in each table given, spread evenly over the `spanMs` from `from`. */
async function seedRawRows(m: TestMerchant, from: number, spanMs: number, n: number, tables: ("decisions" | "impressions" | "usage_events")[]): Promise<void> {
  const series = `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?3 - 1)`;
  const at = `strftime('%Y-%m-%dT%H:%M:%fZ', ?2, '+' || (i * ?4 / ?3 / 1000.0) || ' seconds')`;
  const sql = {
    decisions: `${series} INSERT INTO analytics_decisions (merchant_id, decision_key, customer_ref, decided_at, arm, personalized, ranked)
                SELECT ?1, 'raw_' || i, 'ref_' || (i % 500), ${at}, 'treatment', 1, '["visa"]' FROM n`,
    impressions: `${series} INSERT INTO analytics_offer_impressions (merchant_id, impression_id, offer_id, customer_ref, shown_at)
                  SELECT ?1, 'raw_' || i, 'o_raw', 'ref_' || (i % 500), ${at} FROM n`,
    usage_events: `${series} INSERT INTO usage_events (merchant_id, event_id, customer_ref, method_id, recency_ref, occurred_at, received_at)
                   SELECT ?1, 'raw_' || i, 'ref_' || (i % 500), 'visa', 1.0, ${at}, ${at} FROM n`,
  };
  for (const t of tables) await env.DB.prepare(sql[t]).bind(m.merchantId, iso(from), n, spanMs).run();
}

async function rawRowsLeft(m: TestMerchant): Promise<Record<string, number>> {
  const count = async (table: string) => (await env.DB.prepare(`SELECT count(*) AS n FROM ${table} WHERE merchant_id = ?`).bind(m.merchantId).first<{ n: number }>())!.n;
  return { decisions: await count("analytics_decisions"), impressions: await count("analytics_offer_impressions"), usage_events: await count("usage_events") };
}

const deleteCustomer = async (m: TestMerchant, id: string) =>
  (await api(m.secretKey, `/v1/personalize/customers/${id}`, { method: "DELETE" })).json<{ purge_after: string }>();

// Runs first: bounded chunks are asserted on a database without other old rows.
describe("bounded work per run", () => {
  it("retention deletes at most chunk x rounds rows per rule and finishes on the next run", async () => {
    const m = await createMerchant();
    const now = Date.now();
    const old = iso(now - 91 * DAY_MS);
    await env.DB.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200)
       INSERT INTO usage_events (merchant_id, event_id, customer_ref, method_id, recency_ref, occurred_at, received_at)
       SELECT ?, 'bulk_' || i, 'c_bulk' || (i % 7), 'visa', 1.0, ?, ? FROM n`,
    ).bind(m.merchantId, old, old).run();

    const first = await applyRetention(env, new Date(now), { chunk: 500, maxRounds: 2 });
    expect(first.deleted.usage_events).toBe(1000);
    expect(first.unfinished).toEqual(["usage_events"]);
    const second = await applyRetention(env, new Date(now), { chunk: 500, maxRounds: 2 });
    expect(second.deleted.usage_events).toBe(200);
    expect(second.unfinished).toEqual([]);
    const left = await env.DB.prepare("SELECT count(*) AS n FROM usage_events WHERE merchant_id = ?").bind(m.merchantId).first<{ n: number }>();
    expect(left!.n).toBe(0);
  });

  it("raw rows past 90 days go every 5 minutes too: a day of 12,000 /methods answers and payments is gone after one run (a daily run deletes ~10,000 a table)", async () => {
    const m = await createMerchant();
    const T = Date.UTC(2032, 5, 1, 3, 20, 0);
    // API.md §6: raw decisions are kept 90 days, like usage events (both hold customer_ref pseudonyms).
    await seedRawRows(m, T - 92 * DAY_MS, DAY_MS, 12_000, ["decisions", "usage_events"]);
    const { queries } = await countD1Queries(() => cron(T, ANALYTICS_ROLLUP_CRON));
    expect(await rawRowsLeft(m)).toEqual({ decisions: 0, impressions: 0, usage_events: 0 });
    expect(queries).toBeLessThanOrEqual(D1_QUERIES_PER_INVOCATION);
  });

  it("an hour of raw rows at the README's planned volume (~220,000 answers a day) expires at once and goes in the next 5-minute run", async () => {
    const m = await createMerchant();
    const T = Date.UTC(2032, 6, 1, 10, 0, 0);
    // The hour that just passed the horizon (two hours behind the hour 90 days back, src/analytics/horizons.ts):
    // 9,200 decisions, as many offer impressions, 2,000 payments.
    const hour = T - 90 * DAY_MS - 3 * HOUR_MS;
    await seedRawRows(m, hour, HOUR_MS, 2_000, ["usage_events"]);
    await seedRawRows(m, hour, HOUR_MS, 9_200, ["decisions", "impressions"]);
    const report = await applyRawRetention(env, new Date(T), { budget: new QueryBudget(QUERY_SHARES.frequent.raw_retention) });
    expect(report.unfinished).toEqual([]);
    expect(await rawRowsLeft(m)).toEqual({ decisions: 0, impressions: 0, usage_events: 0 });
  });

  it("raw retention takes a chunk of each table in turn (one backlog does not starve another), stops at its budget and finishes on the next run", async () => {
    const m = await createMerchant();
    const now = Date.now();
    await seedRawRows(m, now - 92 * DAY_MS, DAY_MS, 3_000, ["usage_events", "decisions"]);
    // A round costs a statement per table: 6 (the dirty marks of the deleted hours first), then 2 for the two with rows left.
    const budget = new QueryBudget(10);
    const first = await applyRawRetention(env, new Date(now), { budget });
    expect(budget.left).toBe(0);
    expect(first.deleted).toMatchObject({ usage_events: 1_500, analytics_decisions: 1_500, analytics_conversions: 0, analytics_offer_impressions: 0 });
    expect(first.unfinished.sort()).toEqual(["analytics_decisions", "usage_events"]);
    const second = await applyRawRetention(env, new Date(now));
    expect(second.deleted).toMatchObject({ usage_events: 1_500, analytics_decisions: 1_500 });
    expect(second.unfinished).toEqual([]);
    expect(await rawRowsLeft(m)).toEqual({ decisions: 0, impressions: 0, usage_events: 0 });
  });

  it("a purge that hits its bound leaves the customer pending and finishes on the next run", async () => {
    const m = await createMerchant();
    const id = "cus_big";
    for (let i = 0; i < 5; i++) await seedEvent(m.merchantId, id);
    const { purge_after } = await deleteCustomer(m, id);
    const at = new Date(Date.parse(purge_after));
    const first = await purgeDueCustomers(env, at, { chunk: 2, maxRounds: 1 });
    expect(first).toMatchObject({ customers_purged: 0, unfinished: 1 });
    expect((await loadProfile(env.DB, m.merchantId, await refOf(id), false)).pending_deletion).toBe(true);
    const second = await purgeDueCustomers(env, at, { chunk: 2, maxRounds: 5 });
    expect(second).toMatchObject({ customers_purged: 1, unfinished: 0 });
    expect(await rowsFor("usage_events", m.merchantId, id)).toBe(0);
  });
});

describe("export covers every customer table (API.md §3: everything stored about the customer)", () => {
  it("names, for every table that holds customer_ref, where it shows in the export or why it is left out", async () => {
    const listed = new Set([...Object.keys(EXPORTED_TABLES), ...Object.keys(NOT_EXPORTED)]);
    const missing = (await customerTables()).filter((t) => !listed.has(t));
    // A table listed here needs a line in EXPORTED_TABLES (src/storage/export.ts) and its rows in the export.
    expect(missing).toEqual([]);
  });

  it("exports every row of each of those tables for a customer who has rows in all of them", async () => {
    const m = await createMerchant();
    const id = "cus_export_everything";
    await seedCustomer(m, id);
    await deleteCustomer(m, id); // customer_deletions gets its row; the export still answers during the grace period
    const counts = await tableCounts(m, id);
    const res = await api(m.secretKey, `/v1/personalize/customers/${id}/export`);
    expect(res.status).toBe(200);
    const body = await res.json<Record<string, unknown>>();
    for (const [table, path] of Object.entries(EXPORTED_TABLES)) {
      // A new customer table needs a row from seedCustomer (test/helpers/customerData.ts) for this to mean anything.
      expect({ table, seeded: counts[table]! > 0 }).toEqual({ table, seeded: true });
      const value = path.split(".").reduce<unknown>((v, key) => (v as Record<string, unknown> | null)?.[key], body);
      const exported = Array.isArray(value) ? value.length : value === null || value === undefined ? 0 : 1;
      expect({ table, path, exported }).toEqual({ table, path, exported: Array.isArray(value) ? counts[table] : 1 });
    }
  });
});

describe("purge after the grace period (scheduled handler)", () => {
  it("covers every table that holds customer_ref: each is purged or kept on purpose", async () => {
    const covered = new Set<string>([...CUSTOMER_DATA_TABLES.map((t) => t.table), ...KEPT_AFTER_PURGE]);
    const missing = (await customerTables()).filter((t) => !covered.has(t));
    // A table listed here needs a line in CUSTOMER_DATA_TABLES (src/storage/deletions.ts).
    expect(missing).toEqual([]);
  });

  it("erases every table of that customer at that merchant, keeps the consent log, touches nobody else", async () => {
    const a = await createMerchant();
    const b = await createMerchant();
    const id = "cus_purge_me";
    await seedCustomer(a, id);
    await seedCustomer(a, "cus_neighbour");
    await seedCustomer(b, id); // same customer id at another merchant
    const ref = await refOf(id);
    const neighbourBefore = await tableCounts(a, "cus_neighbour");
    const otherMerchantBefore = await tableCounts(b, id);
    expect(neighbourBefore.usage_events).toBe(2);
    expect(neighbourBefore.method_stats).toBeGreaterThan(0);
    expect(await rowsFor("analytics_decisions", a.merchantId, id)).toBe(1);

    const { purge_after } = await deleteCustomer(a, id);
    const due = Date.parse(purge_after);

    // One second before the grace period ends: nothing happens.
    await cron(due - 1000);
    expect(await rowsFor("usage_events", a.merchantId, id)).toBe(2);
    await readProfile(env, a.merchantId, ref, { crossMerchant: false }); // cache "pending deletion"

    await cron(due);
    const after = await tableCounts(a, id);
    for (const [table, n] of Object.entries(after)) {
      if (!(KEPT_AFTER_PURGE as readonly string[]).includes(table)) expect({ table, n }).toEqual({ table, n: 0 });
    }
    expect(after.consent_log).toBe(1);
    expect(after.customer_deletions).toBe(1);
    const tomb = await env.DB.prepare("SELECT * FROM customer_deletions WHERE merchant_id = ? AND customer_ref = ?").bind(a.merchantId, ref).first();
    expect(tomb).toMatchObject({ status: "purged", purged_at: iso(due) });
    const audit = await env.DB.prepare("SELECT action, actor, request_id FROM data_rights_audit WHERE merchant_id = ? AND customer_ref = ? ORDER BY id")
      .bind(a.merchantId, ref).all();
    expect(audit.results).toEqual([
      { action: "delete", actor: a.secretKeyId, request_id: expect.stringMatching(/^req_/) },
      { action: "purge", actor: "cron", request_id: null },
    ]);
    expect(await env.CACHE.get(profileKey(a.merchantId, ref))).toBeNull();

    expect(await tableCounts(a, "cus_neighbour")).toEqual(neighbourBefore);
    expect(await tableCounts(b, id)).toEqual(otherMerchantBefore);

    // Re-running the job is a no-op.
    const snapshot = await tableCounts(a, id);
    await cron(due + 1000);
    expect(await tableCounts(a, id)).toEqual(snapshot);
    expect(await purgeDueCustomers(env, new Date(due + 2000))).toEqual({ customers_purged: 0, rows_deleted: 0, unfinished: 0 });
  });

  it("a restored customer is never purged", async () => {
    const m = await createMerchant();
    const id = "cus_restored";
    await seedCustomer(m, id);
    const { purge_after } = await deleteCustomer(m, id);
    expect((await api(m.secretKey, `/v1/personalize/customers/${id}/restore`, { method: "POST" })).status).toBe(200);
    await cron(Date.parse(purge_after) + DAY_MS);
    expect(await rowsFor("usage_events", m.merchantId, id)).toBe(2);
    expect(await rowsFor("preferences", m.merchantId, id)).toBe(1);
  });

  it("a purged customer who comes back can be deleted again", async () => {
    const m = await createMerchant();
    const id = "cus_returning";
    const first = await deleteCustomer(m, id);
    await cron(Date.parse(first.purge_after));
    await seedEvent(m.merchantId, id);
    const res = await api(m.secretKey, `/v1/personalize/customers/${id}`, { method: "DELETE" });
    expect(res.status).toBe(202);
    const second = await res.json<{ purge_after: string }>();
    expect(Date.parse(second.purge_after)).toBeGreaterThanOrEqual(Date.parse(first.purge_after));
    expect((await loadProfile(env.DB, m.merchantId, await refOf(id), false)).pending_deletion).toBe(true);
  });

  it("an erasure logs each consent it changes (reason erasure) and nothing else, once, and a restore logs nothing", async () => {
    const m = await createMerchant();
    const cases = {
      er_cross: { cross_merchant_consent: true },
      er_opted_out: { personalization_enabled: false },
      er_both: { personalization_enabled: false, cross_merchant_consent: true },
      er_plain: {},
      er_restored: { personalization_enabled: false, cross_merchant_consent: true },
    };
    let due = 0;
    for (const [id, p] of Object.entries(cases)) {
      await seedPreferences(m.merchantId, id, p);
      await seedConsent(m.merchantId, id, iso(Date.now() - DAY_MS), "revoked"); // the customer's own change: no reason
      due = Math.max(due, Date.parse((await deleteCustomer(m, id)).purge_after));
    }
    expect((await api(m.secretKey, "/v1/personalize/customers/er_restored/restore", { method: "POST" })).status).toBe(200);

    await cron(due);
    const logOf = async (id: string) =>
      (await (await api(m.secretKey, `/v1/personalize/consent?customer_id=${id}`)).json<{ entries: { consent_type: string; action: string; timestamp: string; reason?: string }[] }>()).entries.map(
        ({ consent_type, action, timestamp, reason }) => ({ consent_type, action, timestamp, reason }),
      );
    const own = { consent_type: "personalization", action: "revoked", timestamp: expect.any(String), reason: undefined };
    const crossRevoked = { consent_type: "cross_merchant", action: "revoked", timestamp: iso(due), reason: "erasure" };
    const personalizationBack = { consent_type: "personalization", action: "granted", timestamp: iso(due), reason: "erasure" };
    const expected = {
      er_cross: [own, crossRevoked],
      er_opted_out: [own, personalizationBack],
      er_both: [own, crossRevoked, personalizationBack],
      er_plain: [own],
      er_restored: [own],
    };
    const logs = async () => Object.fromEntries(await Promise.all(Object.keys(cases).map(async (id) => [id, await logOf(id)] as const)));
    expect(await logs()).toEqual(expected);
    expect(await rowsFor("preferences", m.merchantId, "er_both")).toBe(0);
    expect(await rowsFor("preferences", m.merchantId, "er_restored")).toBe(1);

    // The state the log now ends with is the state the API reads; the export of a purged customer is the log.
    const prefs = await (await api(m.secretKey, "/v1/personalize/preferences?customer_id=er_both")).json<{ personalization_enabled: boolean; cross_merchant_consent: boolean }>();
    expect(prefs).toMatchObject({ personalization_enabled: true, cross_merchant_consent: false });
    const exported = await (await api(m.secretKey, "/v1/personalize/customers/er_both/export")).json<{ status: string; consent_log: unknown[] }>();
    expect(exported.status).toBe("purged");
    expect(exported.consent_log).toEqual(expected.er_both.map(({ consent_type, action, timestamp, reason }) => ({ consent_type, action, timestamp, ...(reason ? { reason } : {}) })));

    // Re-runs log nothing more.
    await cron(due + 1000);
    await purgeDueCustomers(env, new Date(due + 2000));
    expect(await logs()).toEqual(expected);
  });

  it("an erasure entry comes after a consent change made while the purge was in flight: the log stays oldest first", async () => {
    const m = await createMerchant();
    const id = "er_in_flight";
    const put = (body: Record<string, unknown>) => api(m.secretKey, "/v1/personalize/preferences", { method: "PUT", body: JSON.stringify({ customer_id: id, ...body }) });
    expect((await put({ favorite_methods: ["paypal"] })).status).toBe(200);
    await deleteCustomer(m, id);
    await env.DB.prepare("UPDATE customer_deletions SET purge_after = ? WHERE merchant_id = ? AND customer_ref = ?")
      .bind(iso(Date.now() - 10 * 60_000), m.merchantId, await refOf(id)).run();
    // The 5-minute cron was scheduled a minute ago (rollups run first); meanwhile the customer opts out.
    const scheduled = new Date(Date.now() - 60_000);
    expect((await put({ personalization_enabled: false })).status).toBe(200);
    expect((await purgeDueCustomers(env, scheduled)).customers_purged).toBe(1);

    const { entries } = await (await api(m.secretKey, `/v1/personalize/consent?customer_id=${id}`)).json<{ entries: { consent_type: string; action: string; timestamp: string; reason?: string }[] }>();
    expect(entries.map((e) => [e.consent_type, e.action, e.reason ?? null])).toEqual([
      ["personalization", "revoked", null],
      ["personalization", "granted", "erasure"],
    ]);
    // API.md §2: oldest first, and the last entry is the state the API now reads (personalization on).
    expect(entries.map((e) => e.timestamp)).toEqual(entries.map((e) => e.timestamp).sort());
  });

  it("a bounded purge logs exactly the consents of the preferences rows it removed (the log and the delete pick the same rows)", async () => {
    const m = await createMerchant();
    const ids = ["er_chunk_a", "er_chunk_b", "er_chunk_c", "er_chunk_d"];
    let due = 0;
    for (const id of ids) {
      await seedPreferences(m.merchantId, id, { cross_merchant_consent: true, personalization_enabled: id !== "er_chunk_b" });
      due = Math.max(due, Date.parse((await deleteCustomer(m, id)).purge_after));
    }
    const state = async () => {
      const out: Record<string, { preferences: number; erasure: string[] }> = {};
      for (const id of ids) {
        const { results } = await env.DB.prepare("SELECT consent_type FROM consent_log WHERE merchant_id = ? AND customer_ref = ? AND reason = 'erasure' ORDER BY id")
          .bind(m.merchantId, await refOf(id))
          .all<{ consent_type: string }>();
        out[id] = { preferences: await rowsFor("preferences", m.merchantId, id), erasure: results.map((r) => r.consent_type) };
      }
      return out;
    };
    const logged = (id: string) => (id === "er_chunk_b" ? ["cross_merchant", "personalization"] : ["cross_merchant"]);
    // Each run deletes at most 2 preferences rows (other due customers' rows may take some of them).
    const removed: number[] = [0];
    for (let run = 0; run < 20 && removed.at(-1)! < ids.length; run++) {
      await purgeDueCustomers(env, new Date(due), { chunk: 2, maxRounds: 1 });
      const now = await state();
      for (const id of ids) expect({ id, ...now[id] }).toEqual({ id, preferences: now[id]!.preferences, erasure: now[id]!.preferences === 1 ? [] : logged(id) });
      removed.push(Object.values(now).filter((s) => s.preferences === 0).length);
    }
    expect(removed.at(-1)).toBe(ids.length);
    expect(removed.some((n) => n > 0 && n < ids.length)).toBe(true); // some run stopped half-way
    for (let i = 1; i < removed.length; i++) expect(removed[i]! - removed[i - 1]!).toBeLessThanOrEqual(2);
  });

  it("the 5-minute cron purges as well (an erasure is done minutes after purge_after); unknown crons leave data alone", async () => {
    const m = await createMerchant();
    const id = "cus_other_crons";
    await seedEvent(m.merchantId, id);
    const { purge_after } = await deleteCustomer(m, id);
    const due = Date.parse(purge_after) + 60_000;
    // An unknown cron means the deployed triggers and the code differ, and the jobs they meant do not run: an error, not a warning.
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    const warn = vi.spyOn(console, "warn");
    try {
      await runScheduled(createScheduledController({ scheduledTime: due, cron: "0 0 1 1 *" }), env, createExecutionContext());
      const lines = error.mock.calls.map(([l]) => JSON.parse(String(l)) as Record<string, unknown>).filter((l) => l.message === "unknown cron, nothing run");
      expect(lines).toEqual([expect.objectContaining({ level: "error", job: "scheduled", cron: "0 0 1 1 *" })]);
      expect(warn.mock.calls.filter(([l]) => String(l).includes("unknown cron"))).toEqual([]);
    } finally {
      error.mockRestore();
      warn.mockRestore();
    }
    await cron(Date.parse(purge_after) - 60_000, ANALYTICS_ROLLUP_CRON); // not due yet
    expect(await rowsFor("usage_events", m.merchantId, id)).toBe(1);
    await cron(due, ANALYTICS_ROLLUP_CRON);
    expect(await rowsFor("usage_events", m.merchantId, id)).toBe(0);
    const tomb = await env.DB.prepare("SELECT status FROM customer_deletions WHERE merchant_id = ? AND customer_ref = ?").bind(m.merchantId, await refOf(id)).first("status");
    expect(tomb).toBe("purged");
  });
});

describe("retention windows at their exact boundaries", () => {
  // 31 August: 18 and 36 months earlier are clamped to the end of February.
  const T = Date.UTC(2029, 7, 31, 3, 17, 0);
  const cut = retentionCutoffs(new Date(T));
  const at = (cutoff: string, deltaS: number) => iso(Date.parse(cutoff) + deltaS * 1000);

  it("computes the windows", () => {
    expect(cut.raw_events).toBe("2029-06-02T01:00:00.000Z"); // the start of the hour 90 days back, less two hours (src/analytics/horizons.ts)
    expect(cut.profile).toBe("2028-02-29T03:17:00.000Z");
    expect(cut.legal_proof).toBe("2026-08-31T03:17:00.000Z");
    expect(monthsBefore(new Date(Date.UTC(2029, 2, 31)), 1).toISOString()).toBe("2029-02-28T00:00:00.000Z");
  });

  it("deletes one second outside each window and keeps one second inside, idempotently", async () => {
    const m = await createMerchant();
    // Raw events: 90 days.
    await seedEvent(m.merchantId, "ev_out", { occurred_at: at(cut.raw_events, -1) });
    await seedEvent(m.merchantId, "ev_in", { occurred_at: at(cut.raw_events, +1) });
    // Preferences: 18 months after last use (the later of last payment and last change).
    await seedPreferences(m.merchantId, "pref_out", { updated_at: at(cut.profile, -1) });
    await seedPreferences(m.merchantId, "pref_in", { updated_at: at(cut.profile, +1) });
    await seedPreferences(m.merchantId, "pref_used_in", { updated_at: at(cut.profile, -86400), last_used_at: at(cut.profile, +1) });
    await seedPreferences(m.merchantId, "pref_used_out", { updated_at: at(cut.profile, -86400), last_used_at: at(cut.profile, -1) });
    // Changed inside the window, last paid before it: the change is a use (the later of the two counts).
    await seedPreferences(m.merchantId, "pref_changed_in", { updated_at: at(cut.profile, +1), last_used_at: at(cut.profile, -86400) });
    // Aggregates: 18 months after the method was last used (seeded by the trigger, then aged).
    for (const [id, delta] of [["stats_out", -1], ["stats_in", +1]] as const) {
      await seedEvent(m.merchantId, id, { occurred_at: at(cut.raw_events, +3600) });
      await env.DB.prepare("UPDATE method_stats SET last_used_at = ? WHERE merchant_id = ? AND customer_ref = ?")
        .bind(at(cut.profile, delta), m.merchantId, await refOf(id)).run();
    }
    // Consent log: 3 years.
    await seedConsent(m.merchantId, "consent_out", at(cut.legal_proof, -1));
    await seedConsent(m.merchantId, "consent_in", at(cut.legal_proof, +1));

    const counts = async () => ({
      ev_out: await rowsFor("usage_events", m.merchantId, "ev_out"),
      ev_in: await rowsFor("usage_events", m.merchantId, "ev_in"),
      pref_out: await rowsFor("preferences", m.merchantId, "pref_out"),
      pref_in: await rowsFor("preferences", m.merchantId, "pref_in"),
      pref_used_in: await rowsFor("preferences", m.merchantId, "pref_used_in"),
      pref_used_out: await rowsFor("preferences", m.merchantId, "pref_used_out"),
      pref_changed_in: await rowsFor("preferences", m.merchantId, "pref_changed_in"),
      stats_out: await rowsFor("method_stats", m.merchantId, "stats_out"),
      stats_in: (await rowsFor("method_stats", m.merchantId, "stats_in")) > 0 ? 1 : 0,
      consent_out: await rowsFor("consent_log", m.merchantId, "consent_out"),
      consent_in: await rowsFor("consent_log", m.merchantId, "consent_in"),
    });
    expect(Object.values(await counts()).every((n) => n === 1 || n > 1)).toBe(true);

    await cron(T);
    const expected = { ev_out: 0, ev_in: 1, pref_out: 0, pref_in: 1, pref_used_in: 1, pref_used_out: 0, pref_changed_in: 1, stats_out: 0, stats_in: 1, consent_out: 0, consent_in: 1 };
    expect(await counts()).toEqual(expected);

    // Re-running is a no-op.
    const again = await applyRetention(env, new Date(T));
    expect(Object.values(again.deleted).every((n) => n === 0)).toBe(true);
    expect(await counts()).toEqual(expected);
  });

  it("an opt-out outlives the profile window: the row keeps personalization off, its methods and last use go, payments stay unstored", async () => {
    const m = await createMerchant();
    await seedPreferences(m.merchantId, "opted_out_long_ago", { updated_at: at(cut.profile, -86400), last_used_at: at(cut.profile, -1), personalization_enabled: false, cross_merchant_consent: true });
    await seedPreferences(m.merchantId, "opted_out_recently", { updated_at: at(cut.profile, +1), personalization_enabled: false });
    await cron(T);
    const row = async (id: string) =>
      env.DB.prepare("SELECT default_method, favorite_methods, excluded_methods, personalization_enabled, cross_merchant_consent, last_used_at FROM preferences WHERE merchant_id = ? AND customer_ref = ?")
        .bind(m.merchantId, await refOf(id)).first();
    // The cross-merchant consent lapses with the profile, logged (the next test).
    expect(await row("opted_out_long_ago")).toEqual({ default_method: null, favorite_methods: "[]", excluded_methods: "[]", personalization_enabled: 0, cross_merchant_consent: 0, last_used_at: null });
    expect(await row("opted_out_recently")).toMatchObject({ default_method: "paypal", personalization_enabled: 0 });
    // Idempotent: a second run changes nothing (and does not count the minimized row again).
    const again = await applyRetention(env, new Date(T));
    expect(again.deleted.preferences_opted_out).toBe(0);
    // The opt-out still holds where it is read: /methods answers personalization_disabled.
    const res = await api(m.secretKey, "/v1/personalize/methods?customer_id=opted_out_long_ago");
    expect(await res.json()).toMatchObject({ personalized: false, fallback_reason: "personalization_disabled" });
  });

  it("a cross-merchant consent that lapses with its expired preferences is logged as revoked by retention, in the same batch", async () => {
    const m = await createMerchant();
    const old = { updated_at: at(cut.profile, -86400), last_used_at: at(cut.profile, -1) };
    await seedPreferences(m.merchantId, "lapse_deleted", { ...old, cross_merchant_consent: true });
    await seedPreferences(m.merchantId, "lapse_opted_out", { ...old, cross_merchant_consent: true, personalization_enabled: false });
    await seedPreferences(m.merchantId, "lapse_no_consent", old);
    await seedPreferences(m.merchantId, "lapse_recent", { cross_merchant_consent: true, updated_at: at(cut.profile, +1) });
    const log = async (id: string) =>
      (await env.DB.prepare("SELECT consent_type, action, created_at, reason FROM consent_log WHERE merchant_id = ? AND customer_ref = ? ORDER BY id")
        .bind(m.merchantId, await refOf(id)).all()).results;

    await cron(T);
    const lapsed = [{ consent_type: "cross_merchant", action: "revoked", created_at: iso(T), reason: "retention" }];
    expect(await rowsFor("preferences", m.merchantId, "lapse_deleted")).toBe(0);
    expect(await log("lapse_deleted")).toEqual(lapsed);
    expect(await log("lapse_opted_out")).toEqual(lapsed); // reduced: the opt-out stays, the cross-merchant consent goes
    expect(await log("lapse_no_consent")).toEqual([]); // nothing changed that the log records (personalization stays on by default)
    expect(await log("lapse_recent")).toEqual([]);

    // A second run logs nothing more.
    await applyRetention(env, new Date(T));
    expect(await log("lapse_deleted")).toHaveLength(1);
    expect(await log("lapse_opted_out")).toHaveLength(1);

    // Where the merchant reads the log: the entry says it was retention, not the customer.
    const consent = await (await api(m.secretKey, "/v1/personalize/consent?customer_id=lapse_deleted")).json<{ entries: unknown[] }>();
    expect(consent.entries).toEqual([{ consent_type: "cross_merchant", action: "revoked", merchant_id: m.merchantId, timestamp: iso(T), reason: "retention" }]);
    const exported = await (await api(m.secretKey, "/v1/personalize/customers/lapse_opted_out/export")).json<{ consent_log: unknown[]; preferences: unknown }>();
    expect(exported.consent_log).toEqual([{ consent_type: "cross_merchant", action: "revoked", timestamp: iso(T), reason: "retention" }]);
    expect(exported.preferences).toMatchObject({ personalization_enabled: false, cross_merchant_consent: false });
    // The customer's own changes carry no reason.
    await api(m.secretKey, "/v1/personalize/preferences", { method: "PUT", body: JSON.stringify({ customer_id: "lapse_deleted", cross_merchant_consent: true }) });
    const after = await (await api(m.secretKey, "/v1/personalize/consent?customer_id=lapse_deleted")).json<{ entries: Record<string, unknown>[] }>();
    expect(after.entries.map((e) => [e.action, e.reason])).toEqual([["revoked", "retention"], ["granted", undefined]]);
  });

  it("logs exactly the consents of the rows a bounded chunk removed (the log and the delete pick the same rows)", async () => {
    const m = await createMerchant();
    // Six expired rows at one instant older than any other test's rows (the chunks take the oldest
    // first), consent on every other one: within the instant, chunks follow the primary key.
    const ids = ["chunk_a", "chunk_b", "chunk_c", "chunk_d", "chunk_e", "chunk_f"];
    for (const [i, id] of ids.entries()) {
      await seedPreferences(m.merchantId, id, { updated_at: iso(Date.UTC(2001, 0, 1)), cross_merchant_consent: i % 2 === 0 });
    }
    const state = async () => {
      const out: Record<string, [number, number]> = {};
      for (const id of ids) out[id] = [await rowsFor("preferences", m.merchantId, id), await rowsFor("consent_log", m.merchantId, id)];
      return out;
    };
    const rule = RETENTION_RULES.find((r) => r.name === "preferences")!;
    for (let round = 1; round <= 3; round++) {
      await applyRetention(env, new Date(T), { chunk: 2, maxRounds: 1, rules: [rule] });
      const s = await state();
      const removed = ids.filter((id) => s[id]![0] === 0);
      expect(removed).toHaveLength(2 * round);
      for (const [i, id] of ids.entries()) expect({ id, logged: s[id]![1] }).toEqual({ id, logged: s[id]![0] === 0 && i % 2 === 0 ? 1 : 0 });
    }
  });

  it("the daily cron also applies the analytics retention (raw facts 90 days)", async () => {
    const m = await createMerchant();
    await seedAnalytics(m.merchantId, "cus_analytics_old");
    await env.DB.prepare("UPDATE analytics_decisions SET decided_at = ? WHERE merchant_id = ?").bind(at(cut.raw_events, -3600), m.merchantId).run();
    await cron(T);
    expect(await rowsFor("analytics_decisions", m.merchantId, "cus_analytics_old")).toBe(0);
  });

  it("removes purge tombstones and audit rows after 3 years", async () => {
    const m = await createMerchant();
    const id = "cus_old_tombstone";
    const { purge_after } = await deleteCustomer(m, id);
    await cron(Date.parse(purge_after));
    expect(await rowsFor("customer_deletions", m.merchantId, id)).toBe(1);
    const threeYearsLater = Date.parse(purge_after) + 3 * 366 * DAY_MS;
    await cron(threeYearsLater);
    expect(await rowsFor("customer_deletions", m.merchantId, id)).toBe(0);
    expect(await rowsFor("data_rights_audit", m.merchantId, id)).toBe(0);
  });
});

describe("each cron invocation stays within D1's 1,000 queries (Miniflare does not enforce it; production would fail the whole run)", () => {
  /**
   * Customers of one merchant, each with two events and a deletion due at `due`, written directly;
   * the first `heavy` of them with 600 events (more than one 500-row purge chunk).
   */
  async function dueCustomers(n: number, due: number, heavy = 0): Promise<TestMerchant> {
    const m = await createMerchant();
    const at = iso(due - 30 * DAY_MS);
    const statements: D1PreparedStatement[] = [];
    for (let i = 0; i < n; i++) {
      const ref = await refOf(`cus_budget_${i}`);
      statements.push(
        env.DB.prepare("INSERT INTO customer_deletions (merchant_id, customer_ref, status, requested_at, purge_after) VALUES (?, ?, 'pending', ?, ?)").bind(m.merchantId, ref, at, iso(due)),
      );
    }
    await env.DB.batch(statements);
    for (let i = 0; i < n; i++) for (let k = 0; k < 2; k++) await seedEvent(m.merchantId, `cus_budget_${i}`);
    for (let i = 0; i < heavy; i++) {
      await env.DB.prepare(
        `WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 600)
         INSERT INTO usage_events (merchant_id, event_id, customer_ref, method_id, recency_ref, occurred_at, received_at)
         SELECT ?1, ?2 || k, ?3, 'visa', 1.0, ?4, ?4 FROM n`,
      ).bind(m.merchantId, `heavy_${i}_`, await refOf(`cus_budget_${i}`), at).run();
    }
    return m;
  }
  const pending = async (m: TestMerchant) =>
    (await env.DB.prepare("SELECT count(*) AS n FROM customer_deletions WHERE merchant_id = ? AND status = 'pending'").bind(m.merchantId).first<{ n: number }>())!.n;

  it("the daily job with more due rows than fit purges what fits, finishes on later runs, and never passes the limit", async () => {
    const due = Date.now() + 40 * DAY_MS;
    // 150 customers, 80 of them with 600 events: 48,000 rows, ~100 rounds of 7 deletes for one run without a budget.
    const m = await dueCustomers(150, due - 1000, 80);
    const runs: number[] = [];
    for (let run = 0; run < 4 && (await pending(m)) > 0; run++) {
      const { queries } = await countD1Queries(() => cron(due + run * DAY_MS));
      runs.push(queries);
    }
    expect(await pending(m)).toBe(0);
    expect(runs.length).toBeGreaterThan(1); // one run could not have done it within the limit
    for (const q of runs) expect(q).toBeLessThanOrEqual(D1_QUERIES_PER_INVOCATION);
    for (let i = 0; i < 150; i += 13) expect(await rowsFor("usage_events", m.merchantId, `cus_budget_${i}`)).toBe(0);
  });

  it("the purge is set-based: one run erases up to 200 customers for a few queries, not a few per customer", async () => {
    const due = Date.now() + 120 * DAY_MS;
    const m = await dueCustomers(250, due - 1000);
    const first = await countD1Queries(() => purgeDueCustomers(env, new Date(due), { budget: new QueryBudget(QUERY_SHARES.frequent.purge) }));
    expect(first.result).toMatchObject({ customers_purged: 200, unfinished: 50 });
    // 1 bound + per round a delete per table and the preferences' consent log (500 rows each; 250
    // customers' stats rows take two rounds) + 3 for the mark. Per customer, as before, it was ~10 queries each: 2,500.
    const perRound = CUSTOMER_DATA_TABLES.length + CUSTOMER_DATA_TABLES.filter((t) => t.log).length;
    expect(perRound).toBe(CUSTOMER_DATA_TABLES.length + 1);
    expect(first.queries).toBeLessThanOrEqual(1 + perRound * 3 + 3);
    expect(await pending(m)).toBe(50);
    const audits = await env.DB.prepare("SELECT count(*) AS n FROM data_rights_audit WHERE merchant_id = ? AND action = 'purge'").bind(m.merchantId).first<{ n: number }>();
    expect(audits!.n).toBe(200);
    const second = await purgeDueCustomers(env, new Date(due));
    expect(second).toMatchObject({ customers_purged: 50, unfinished: 0 });
    for (let i = 0; i < 250; i += 7) expect(await rowsFor("usage_events", m.merchantId, `cus_budget_${i}`)).toBe(0);
  });

  it("customers whose rows are gone are marked purged even when the run stops early; the rest stay pending", async () => {
    const due = Date.now() + 160 * DAY_MS;
    const m = await dueCustomers(3, due - 2000, 1); // cus_budget_0 has 602 events, the others 2
    // The heavy customer is due last: a round deletes in purge_after order.
    await env.DB.prepare("UPDATE customer_deletions SET purge_after = ? WHERE merchant_id = ? AND customer_ref = ?").bind(iso(due - 1000), m.merchantId, await refOf("cus_budget_0")).run();
    const first = await purgeDueCustomers(env, new Date(due), { chunk: 100, maxRounds: 1 });
    expect(first).toMatchObject({ customers_purged: 2, unfinished: 1 });
    expect(await rowsFor("usage_events", m.merchantId, "cus_budget_0")).toBe(602 - 96);
    expect((await loadProfile(env.DB, m.merchantId, await refOf("cus_budget_0"), false)).pending_deletion).toBe(true);
    expect(await purgeDueCustomers(env, new Date(due))).toMatchObject({ customers_purged: 1, unfinished: 0 });
    expect(await pending(m)).toBe(0);
  });

  it("the 5-minute job (rollups of many dirty days, the purge, a raw-retention backlog) never passes the limit either", async () => {
    const now = Date.now() + 80 * DAY_MS;
    const m = await dueCustomers(60, now - 1000);
    // Dirty hours on 20 days: the rollups alone would take 20 × 21 statements.
    const marks = [];
    for (let d = 1; d <= 20; d++) marks.push(env.DB.prepare("INSERT OR IGNORE INTO analytics_dirty_hours (merchant_id, hour) VALUES (?, ?)").bind(m.merchantId, iso(Math.floor(now / DAY_MS) * DAY_MS - d * DAY_MS).slice(0, 13) + ":00:00Z"));
    await env.DB.batch(marks);
    // More expired decisions than a run's raw-retention share deletes (100 statements of 500).
    await seedRawRows(m, now - 100 * DAY_MS, DAY_MS, 60_000, ["decisions"]);
    const { queries } = await countD1Queries(() => cron(now, ANALYTICS_ROLLUP_CRON));
    expect(queries).toBeLessThanOrEqual(D1_QUERIES_PER_INVOCATION);
    expect(await pending(m)).toBeLessThan(60); // the purge got its share
    expect((await rawRowsLeft(m)).decisions).toBeGreaterThan(0); // retention stopped at its share…
    expect((await rawRowsLeft(m)).decisions).toBeLessThan(20_000); // …after most of the backlog
  });

  it("the shares of each cron's jobs add up to less than the limit", () => {
    for (const shares of Object.values(QUERY_SHARES)) {
      expect(Object.values(shares).reduce((a: number, b: number) => a + b, 0)).toBeLessThan(D1_QUERIES_PER_INVOCATION);
    }
  });
});
