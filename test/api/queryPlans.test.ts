import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { FACTS, dirtyMerchants, oneMerchant } from "../../src/analytics/facts";
import { loadFacts } from "../../src/analytics/load";
import { closedDirtyHours, recomputeDayStatements } from "../../src/analytics/rollups";
import { applyRawRetention } from "../../src/jobs/rawRetention";
import { runDataLifecycle } from "../../src/jobs/scheduled";
import { rawEventsCutoff } from "../../src/jobs/retention";
import { crossMerchantPeers } from "../../src/storage/consent";
import { insertDeadLetters } from "../../src/storage/deadLetters";
import { storeUsageEvents } from "../../src/storage/events";
import { purgeSql, RETENTION_RULES } from "../../src/storage/deletions";
import { readCustomerData } from "../../src/storage/export";
import { listMerchants, merchantsAllowingOrigin } from "../../src/storage/merchants";
import { loadProfiles } from "../../src/storage/profile";

/**
 * Query plans of the statements whose cost would otherwise grow with data that is not theirs: an
 * unauthenticated preflight, the analytics aggregates the read path and the rollup job run, and the
 * per-customer export and purge. Plans come from the real D1 (EXPLAIN QUERY PLAN), for the SQL the
 * code really prepares.
 */

/** The SQL `run` prepares, captured from a D1 that passes everything through. */
async function sqlOf(run: (db: D1Database) => unknown): Promise<string[]> {
  const seen: string[] = [];
  const db = new Proxy(env.DB, {
    get(target, prop) {
      if (prop === "prepare") return (sql: string) => (seen.push(sql), target.prepare(sql));
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  await run(db);
  return seen;
}

async function planOf(sql: string): Promise<string[]> {
  // D1 wants every parameter bound; the plan does not depend on the values.
  const numbered = [...sql.matchAll(/\?(\d+)/g)].map((m) => Number(m[1]));
  const params = numbered.length > 0 ? Math.max(...numbered) : (sql.match(/\?/g) ?? []).length;
  const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`).bind(...Array<null>(params).fill(null)).all<{ detail: string }>();
  return results.map((r) => r.detail);
}

/** Plan lines that read a whole table, or a WITHOUT ROWID table by its merchant prefix only. */
const wasteful = (plan: string[]) => plan.filter((d) => /^SCAN (?!json_each|\(|subquery|CONSTANT)/.test(d) || /\(merchant_id=\?\)$/.test(d) || /AUTOMATIC/.test(d));

const HOUR = 3_600_000;

describe("query plans", () => {
  it("a preflight's origin lookup is one primary-key search, never a scan of merchants", async () => {
    const sql = await sqlOf((db) => merchantsAllowingOrigin(db, "https://plan.example", Date.now() + 3_600_000));
    expect(sql).toHaveLength(1);
    const plan = await planOf(sql[0]!);
    expect(plan).toEqual([expect.stringMatching(/^SEARCH merchant_origins USING PRIMARY KEY \(origin=\?\)$/)]);
  });

  it("a dead letter's erasure check is a search of customer_deletions by customer, never a scan of the tombstones", async () => {
    const letter = { queue: "feedback" as const, message_id: "plan_dl", merchant_id: "m_plan", customer_ref: "ref_plan", body: "{}", truncated: false, attempts: 6, received_at: new Date().toISOString(), made_at: null };
    const sql = await sqlOf((db) => insertDeadLetters(db, [letter]));
    expect(sql).toHaveLength(2);
    for (const s of sql) {
      const plan = await planOf(s);
      expect(wasteful(plan)).toEqual([]);
    }
    await env.DB.prepare("DELETE FROM dead_letters WHERE message_id = 'plan_dl'").run();
  });

  it("storing an event reads the customer's state now and at receipt by primary keys and the customer indexes, never a scan", async () => {
    const at = new Date().toISOString();
    const row = { merchant_id: "m_plan", event_id: "plan_ev", customer_ref: "ref_plan", method_id: "visa", amount: null, currency: null, device_type: null, location_country: null, decision_id: null, offer_id: null, amount_band: null, recency_ref: 0, occurred_at: at, received_at: at };
    const sql = await sqlOf((db) => storeUsageEvents(db, [row], rawEventsCutoff(new Date())));
    expect(sql).toHaveLength(2);
    for (const s of sql) {
      const plan = await planOf(s);
      expect(wasteful(plan)).toEqual([]);
      expect(plan.join("\n")).not.toMatch(/USING (COVERING )?INDEX idx_(consent_log|data_rights_audit)_created/);
    }
    // What the insert and its triggers wrote goes again: the later plans are read over this file's seeded statistics.
    await env.DB.batch(["usage_events", "method_stats", "method_popularity", "preferences"].map((t) => env.DB.prepare(`DELETE FROM ${t} WHERE merchant_id = 'm_plan'`)));
  });

  it("a page of the merchant list is a search of the merchants' primary key from the cursor, in its order (no sort)", async () => {
    const sql = await sqlOf((db) => listMerchants(db, 20, "m_plan"));
    expect(sql).toHaveLength(1);
    const plan = await planOf(sql[0]!);
    expect(plan).toEqual([expect.stringMatching(/^SEARCH merchants USING (INDEX sqlite_autoindex_merchants_1|PRIMARY KEY) \(id>\?\)$/)]);
  });

  it("a page of a customer's cross-merchant peers is a search of the consenting rows' index by customer and merchant id", async () => {
    const sql = await sqlOf((db) => crossMerchantPeers(db, "m_plan", "c_plan"));
    expect(sql).toHaveLength(1);
    const plan = await planOf(sql[0]!);
    expect(plan).toEqual([expect.stringMatching(/^SEARCH preferences USING COVERING INDEX idx_preferences_cross \(customer_ref=\? AND merchant_id>\?\)$/)]);
  });

  it("retention's logged preferences rules read the expired chunk in idx_preferences_last_use's own order (no sort of every expired row)", async () => {
    const rules = RETENTION_RULES.filter((r) => r.log);
    expect(rules.map((r) => r.name)).toEqual(["preferences", "preferences_opted_out"]);
    for (const s of rules.flatMap((r) => [r.log!, r.sql])) {
      const plan = await planOf(s);
      expect(plan).toContainEqual(expect.stringMatching(/^SEARCH preferences USING INDEX idx_preferences_last_use \(<expr><\?\)$/));
      expect({ sql: s.replace(/\s+/g, " ").slice(0, 80), sorts: plan.filter((d) => /TEMP B-TREE/.test(d)), wasteful: wasteful(plan) }).toEqual({ sql: expect.any(String), sorts: [], wasteful: [] });
    }
  });

  it("analytics retention finds each table's expired chunk through an index on its time (conversions: the later of decision and payment time)", async () => {
    const { analyticsRetentionStatements } = await import("../../src/analytics/retention");
    const sql = await sqlOf((db) => analyticsRetentionStatements(db, new Date()));
    const conversions = sql.find((s) => s.includes("DELETE FROM analytics_conversions"))!;
    expect(await planOf(conversions)).toContainEqual(expect.stringMatching(/USING (COVERING )?INDEX idx_analytics_conversions_last_time \(<expr><\?\)/));
    for (const s of sql.filter((q) => /DELETE FROM analytics_(decisions|conversions|offer_impressions) /.test(q))) {
      expect({ sql: s.slice(0, 60), wasteful: wasteful(await planOf(s)) }).toEqual({ sql: expect.any(String), wasteful: [] });
    }
  });

  it("the 5-minute raw retention finds every table's expired chunk through an index on its time (it runs 288 times a day)", async () => {
    const sql = await sqlOf((db) => applyRawRetention({ DB: db }, new Date()));
    expect(sql.map((s) => /DELETE FROM (\w+)/.exec(s)![1])).toEqual(["analytics_dirty_hours", "usage_events", "dead_letters", "analytics_decisions", "analytics_conversions", "analytics_offer_impressions"]);
    for (const s of sql) {
      const plan = await planOf(s);
      expect(plan).toContainEqual(expect.stringMatching(/^SEARCH \w+ USING (COVERING )?INDEX idx_\w+ \((hour|occurred_at|received_at|decided_at|<expr>|shown_at)<\?\)$/));
      expect({ sql: s.slice(0, 60), wasteful: wasteful(plan) }).toEqual({ sql: expect.any(String), wasteful: [] });
    }
  });

  it("the payments aggregate joins a payment's conversion by event id, on the read path and in the rollup job", async () => {
    for (const scope of [oneMerchant, dirtyMerchants]) {
      const plan = await planOf(FACTS.payments.aggregate(scope));
      expect(plan).toContainEqual(expect.stringMatching(/^SEARCH c USING INDEX idx_analytics_conversions_event \(merchant_id=\? AND event_id=\?\)/));
    }
  });

  it("the offers aggregate finds a redemption by the impression's customer and offer, on the read path and in the rollup job", async () => {
    for (const scope of [oneMerchant, dirtyMerchants]) {
      const plan = await planOf(FACTS.offers.aggregate(scope));
      expect(plan).toContainEqual(expect.stringMatching(/^SEARCH i USING INDEX idx_analytics_impressions_time \(merchant_id=\? AND shown_at>\? AND shown_at<\?\)/));
      expect(plan).toContainEqual(expect.stringMatching(/^SEARCH u USING INDEX idx_usage_events_customer \(merchant_id=\? AND customer_ref=\? AND occurred_at>\? AND occurred_at<\?\)/));
      expect(plan).toContainEqual(expect.stringMatching(/^SEARCH j USING COVERING INDEX idx_analytics_impressions_customer \(merchant_id=\? AND customer_ref=\? AND offer_id=\? AND shown_at>\? AND shown_at<\?\)/));
    }
  });

  it("the rollup job and the analytics read path never scan a table, whatever the merchant count", async () => {
    const now = Date.now();
    const hour = Math.floor(now / HOUR) * HOUR - 2 * HOUR;
    const sql = [
      ...(await sqlOf((db) => db.batch(recomputeDayStatements(db, Math.floor(hour / (24 * HOUR)) * 24 * HOUR, [hour])))),
      ...(await sqlOf((db) => closedDirtyHours(db, now, 48))),
      ...(await sqlOf((db) => loadFacts(db, "m_plan", now - 40 * 24 * HOUR, now + HOUR, now, ["decisions", "conversions", "ttp", "payments", "offers"], { useDaily: true }))),
    ];
    expect(sql.length).toBeGreaterThan(20);
    for (const s of sql) expect({ sql: s.replace(/\s+/g, " ").slice(0, 160), wasteful: wasteful(await planOf(s)) }).toEqual({ sql: expect.any(String), wasteful: [] });
  });

  it("the purge reads only the run's due deletions and searches each table by those customers", async () => {
    const sql = purgeSql();
    const logs = sql.logs.filter((s) => s !== null);
    expect(logs).toHaveLength(1); // the preferences' erased consents
    for (const s of [...sql.deletes, ...logs, sql.audit, sql.mark]) {
      const plan = await planOf(s);
      expect(plan).toContainEqual(expect.stringMatching(/^SEARCH d USING COVERING INDEX idx_customer_deletions_due \(purge_after<\?\)$/));
      // The consent log reads its chunk twice (cross-merchant consents, then opt-outs).
      expect(plan.filter((d) => /^SEARCH t /.test(d))).toHaveLength(s === sql.audit || s === sql.mark ? sql.deletes.length : logs.includes(s) ? 2 : 1);
      expect({ sql: s.replace(/\s+/g, " ").slice(0, 80), wasteful: wasteful(plan) }).toEqual({ sql: expect.any(String), wasteful: [] });
    }
    // The claim finds the due deletions through the same index.
    const claim = await planOf(sql.claim);
    expect({ claim, wasteful: wasteful(claim) }).toEqual({ claim: expect.arrayContaining([expect.stringMatching(/COVERING INDEX idx_customer_deletions_due \(purge_after<\?\)$/)]), wasteful: [] });
  });

  it("after the daily job's PRAGMA optimize, the per-customer export and purge search by customer, not through the whole merchant", async () => {
    const db = env.DB;
    const at = new Date().toISOString();
    const rows: D1PreparedStatement[] = [];
    for (let i = 0; i < 60; i++) {
      const [m, c] = [`m_plan_${i % 2}`, `c_plan_${i % 20}`];
      rows.push(
        db.prepare("INSERT INTO analytics_decisions (merchant_id, decision_key, customer_ref, decided_at, arm, personalized, ranked) VALUES (?, ?, ?, ?, 'treatment', 1, '[]')").bind(m, `d${i}`, c, at),
        db
          .prepare("INSERT INTO analytics_conversions (merchant_id, decision_key, event_id, customer_ref, arm, method_id, rank, decided_at, occurred_at, ttp_bin) VALUES (?, ?, ?, ?, 'treatment', 'visa', 1, ?, ?, 1)")
          .bind(m, `d${i}`, `e${i}`, c, at, at),
        db.prepare("INSERT INTO analytics_offer_impressions (merchant_id, impression_id, offer_id, customer_ref, shown_at) VALUES (?, ?, 'o_plan', ?, ?)").bind(m, `i${i}`, c, at),
      );
    }
    await db.batch(rows);
    await runDataLifecycle(env, new Date());

    const sql = [
      ...(await sqlOf((d) => readCustomerData(d, "m_plan_0", "c_plan_0"))),
      ...Object.values(purgeSql()).flat().filter((s) => s !== null),
      // The profile read of /methods (one key) and of the feedback consumer (many): a search per key.
      ...(await sqlOf((d) => loadProfiles(d, [{ merchantId: "m_plan_0", customerRef: "c_plan_0", crossMerchant: true }]))),
    ];
    expect(sql.length).toBeGreaterThan(10);
    for (const s of sql) expect({ sql: s.replace(/\s+/g, " ").slice(0, 160), wasteful: wasteful(await planOf(s)) }).toEqual({ sql: expect.any(String), wasteful: [] });
  });
});
