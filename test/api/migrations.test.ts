import { applyD1Migrations, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { amountBand } from "../../src/personalization/buckets";
import { D1_LIMITS } from "../helpers/d1Sql";

/**
 * A database upgraded in two steps (migrations 1..k, rows the code of that
 * time wrote, then the rest) must end exactly like a database that had every migration before the
 * same rows were written with today's code: same schema, same rows, same aggregates, same triggers.
 * UNMIGRATED_DB is the staged database, DB the fresh one; both are reset per cut point.
 */
const ALL = env.TEST_MIGRATIONS;

async function reset(db: D1Database) {
  const objs = (await db.prepare("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND type IN ('trigger', 'view', 'table') ORDER BY rowid DESC").all<{ type: string; name: string }>()).results;
  for (const o of objs.filter((o) => o.type === "trigger")) await db.prepare(`DROP TRIGGER IF EXISTS "${o.name}"`).run();
  for (const o of objs.filter((o) => o.type === "view")) await db.prepare(`DROP VIEW IF EXISTS "${o.name}"`).run();
  for (const o of objs.filter((o) => o.type === "table")) await db.prepare(`DROP TABLE IF EXISTS "${o.name}"`).run();
  const seq = await db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'sqlite_sequence'").first<{ n: number }>();
  if (seq!.n > 0) await db.prepare("DELETE FROM sqlite_sequence").run();
}

/** amountBand before c35d522 (test/api/rebandMigration.test.ts). */
const OLD_ZERO_DECIMAL = new Set(["JPY", "KRW", "VND", "CLP", "ISK", "HUF", "TWD", "UGX", "XAF", "XOF"]);
function oldBand(amount: number, currency: string): number {
  const normalized = OLD_ZERO_DECIMAL.has(currency) ? amount * 100 : amount;
  const band = [2_000, 10_000, 50_000].findIndex((upper) => normalized < upper);
  return band === -1 ? 3 : band;
}

type Ev = { m: string; c: string; method: string; amount: number | null; cur: string | null; dev: string | null; cc: string | null; offer: string | null; at: string };
const EVENTS: Ev[] = [];
{
  const curs = ["USD", "EUR", "KWD", "JPY", "HUF", "XPF", "CLF", null];
  const methods = ["visa", "paypal", "klarna"];
  let i = 0;
  for (const m of ["m_a", "m_b"]) for (const c of ["c1", "c2", "c3"]) for (const cur of curs) {
    i++;
    EVENTS.push({
      m, c, method: methods[i % 3]!, amount: cur === null ? (i % 2 ? null : 1500) : [150, 15_000, 150_000, 4_000_000][i % 4]!,
      cur, dev: i % 3 ? "mobile" : null, cc: i % 4 ? "NL" : null, offer: i % 5 ? null : "offer_x",
      at: `2026-10-${String(1 + (i % 27)).padStart(2, "0")}T1${i % 10}:00:00.000Z`,
    });
  }
}

async function writeRows(db: D1Database, level: number, band: (amount: number, cur: string) => number) {
  const s: D1PreparedStatement[] = [];
  const cfg = (o: string[]) => JSON.stringify({ methods: ["visa", "paypal", "klarna"], allowed_origins: o });
  s.push(db.prepare("INSERT INTO merchants (id, name, tier, config, created_at, updated_at) VALUES ('m_a', 'A', 'growth', ?, '2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z')").bind(cfg(["https://a.example"])));
  s.push(db.prepare("INSERT INTO merchants (id, name, tier, config, created_at, updated_at) VALUES ('m_b', 'B', 'starter', ?, '2026-01-01T00:00:00.000Z', '2026-01-03T00:00:00.000Z')").bind(cfg(["https://b.example", "http://localhost:8787"])));
  s.push(db.prepare("INSERT INTO api_keys (key_id, merchant_id, key_hash, type, prefix, created_at) VALUES ('k1', 'm_a', 'h1', 'secret', 'tp2_sk_x', '2026-01-01T00:00:00.000Z')"));
  for (const m of ["m_a", "m_b"]) for (const c of ["c1", "c2"]) {
    s.push(db.prepare("INSERT INTO preferences (merchant_id, customer_ref, default_method, favorite_methods, excluded_methods, personalization_enabled, cross_merchant_consent, created_at, updated_at) VALUES (?, ?, 'visa', '[\"paypal\"]', '[]', 1, ?, '2026-02-01T00:00:00.000Z', '2026-02-01T00:00:00.000Z')").bind(m, c, c === "c1" ? 1 : 0));
    s.push(db.prepare("INSERT INTO consent_log (merchant_id, customer_ref, consent_type, action, created_at) VALUES (?, ?, 'cross_merchant', 'granted', '2026-02-01T00:00:00.000Z')").bind(m, c));
    s.push(db.prepare("INSERT INTO consent_log (merchant_id, customer_ref, consent_type, action, created_at) VALUES (?, ?, 'personalization', 'revoked', '2026-02-02T00:00:00.000Z')").bind(m, c));
  }
  let n = 0;
  for (const e of EVENTS) {
    n++;
    const b = e.amount === null ? null : e.cur === null ? amountBand(e.amount, null) : band(e.amount, e.cur);
    s.push(db.prepare(
      `INSERT INTO usage_events (merchant_id, event_id, customer_ref, method_id, amount, currency, device_type, location_country, decision_id, offer_id, amount_band, recency_ref, occurred_at, received_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    ).bind(e.m, `ev${n}`, e.c, e.method, e.amount, e.cur, e.dev, e.cc, e.offer, b, 1 + n / 7, e.at, e.at));
  }
  s.push(db.prepare("INSERT INTO customer_deletions (merchant_id, customer_ref, status, requested_at, purge_after, purged_at) VALUES ('m_a', 'c9', 'purged', '2026-03-01T00:00:00.000Z', '2026-03-31T00:00:00.000Z', '2026-04-01T00:00:00.000Z')"));
  s.push(db.prepare("INSERT INTO customer_deletions (merchant_id, customer_ref, status, requested_at, purge_after) VALUES ('m_b', 'c3', 'pending', '2026-10-20T00:00:00.000Z', '2026-11-19T00:00:00.000Z')"));
  if (level >= 4) s.push(db.prepare("INSERT INTO data_rights_audit (merchant_id, customer_ref, action, actor, request_id, created_at) VALUES ('m_a', 'c9', 'purge', 'cron', NULL, '2026-04-01T00:00:00.000Z')"));
  if (level >= 5) {
    s.push(db.prepare("INSERT INTO analytics_decisions (merchant_id, decision_key, customer_ref, decided_at, arm, personalized, fallback_reason, ranked, device_type, country, currency, cache) VALUES ('m_a', 'd1', 'c1', '2026-10-05T10:00:00.000Z', 'treatment', 1, NULL, '[\"visa\"]', 'mobile', 'NL', 'EUR', 'miss')"));
    s.push(db.prepare("INSERT INTO analytics_conversions (merchant_id, decision_key, event_id, customer_ref, arm, fallback_reason, method_id, rank, amount, currency, decided_at, occurred_at, ttp_bin) VALUES ('m_a', 'd1', 'ev1', 'c1', 'treatment', NULL, 'visa', 1, 150, 'USD', '2026-10-05T10:00:00.000Z', '2026-10-05T10:03:00.000Z', 4)"));
    s.push(db.prepare("INSERT INTO analytics_offer_impressions (merchant_id, impression_id, offer_id, customer_ref, shown_at) VALUES ('m_a', 'i1', 'offer_x', 'c1', '2026-10-05T09:00:00.000Z')"));
    s.push(db.prepare("INSERT INTO analytics_decision_rollups (merchant_id, grain, bucket, arm, fallback_reason, device_type, country, currency, decisions, personalized, cache_hits, cache_misses) VALUES ('m_a', 'h', '2026-10-05T10:00:00Z', 'treatment', '', 'mobile', 'NL', 'EUR', 1, 1, 0, 1)"));
  }
  if (level >= 7) s.push(db.prepare("INSERT INTO dead_letters (queue, message_id, merchant_id, customer_ref, body, attempts, received_at) VALUES ('feedback', 'msg1', 'm_a', 'c1', '{}', 5, '2026-10-06T00:00:00.000Z')"));
  await db.batch(s);
  // Retention removed the newest consent entry: its id must not come back.
  await db.prepare("DELETE FROM consent_log WHERE id = (SELECT max(id) FROM consent_log)").run();
}

/** Later writes, by today's code, on both databases. */
async function laterWrites(db: D1Database) {
  await db.batch([
    db.prepare("INSERT INTO usage_events (merchant_id, event_id, customer_ref, method_id, amount, currency, device_type, location_country, offer_id, amount_band, recency_ref, occurred_at, received_at) VALUES ('m_a', 'later1', 'c1', 'paypal', 15000, 'KWD', 'mobile', 'NL', 'offer_x', ?, 9.5, '2026-11-01T10:00:00.000Z', '2026-11-01T10:00:00.000Z')").bind(amountBand(15000, "KWD")),
    db.prepare("INSERT INTO consent_log (merchant_id, customer_ref, consent_type, action, created_at, reason) VALUES ('m_a', 'c1', 'cross_merchant', 'revoked', '2026-11-01T00:00:00.000Z', 'erasure')"),
    db.prepare("UPDATE merchants SET config = json_set(config, '$.allowed_origins', json('[\"https://new.example\"]')), updated_at = '2026-11-02T00:00:00.000Z', version = version + 1 WHERE id = 'm_b'"),
    db.prepare("UPDATE merchants SET tier = 'scale' WHERE id = 'm_a'"), // an operator's SQL: the version trigger
  ]);
}

const SKIP_TABLES = new Set(["d1_migrations", "_cf_KV", "_cf_METADATA"]);
async function snapshot(db: D1Database) {
  const schema = (await db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE '_cf_%' AND name <> 'd1_migrations' AND name NOT LIKE 'sqlite_autoindex_d1_migrations%' ORDER BY type, name").all()).results;
  const tables = (await db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%' ORDER BY name").all<{ name: string }>()).results.map((r) => r.name).filter((n) => !SKIP_TABLES.has(n));
  const data: Record<string, unknown[]> = {};
  for (const t of tables) {
    const rows = (await db.prepare(`SELECT * FROM "${t}"`).all<Record<string, unknown>>()).results.map((r) =>
      Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === "number" && !Number.isInteger(v) ? Math.round(v * 1e9) / 1e9 : v])));
    // updated_at set to "now" by the version trigger differs by the clock: keep only whether it moved.
    data[t] = rows.map((r) => JSON.stringify(t === "merchants" ? { ...r, updated_at: String(r.updated_at).startsWith("2026-0") || String(r.updated_at).startsWith("2026-11-02") ? r.updated_at : "now" } : r)).sort();
  }
  return { schema, data };
}

describe("a staged upgrade (migrations 1..k, rows the code of that time wrote, then the rest) equals a fresh database with the same rows", () => {
  for (const k of [5, 9, 12, 13, 14, 15, 16, 17, 18, 19, 20]) {
    it(`cut after migration ${k}`, async () => {
      await reset(env.UNMIGRATED_DB);
      await reset(env.DB);
      await applyD1Migrations(env.UNMIGRATED_DB, ALL.slice(0, k));
      await writeRows(env.UNMIGRATED_DB, k, k >= 19 ? (a, c) => amountBand(a, c)! : oldBand);
      await applyD1Migrations(env.UNMIGRATED_DB, ALL);

      await applyD1Migrations(env.DB, ALL);
      await writeRows(env.DB, k, (a, c) => amountBand(a, c)!);

      const staged = await snapshot(env.UNMIGRATED_DB);
      const fresh = await snapshot(env.DB);
      expect(staged.schema).toEqual(fresh.schema);
      expect(staged.data).toEqual(fresh.data);

      await laterWrites(env.UNMIGRATED_DB);
      await laterWrites(env.DB);
      const staged2 = await snapshot(env.UNMIGRATED_DB);
      const fresh2 = await snapshot(env.DB);
      expect(staged2.data).toEqual(fresh2.data);
    });
  }
});

/**
 * Remote `wrangler d1 migrations apply --remote` does not split a migration itself: it POSTs the whole
 * file to D1's /query endpoint, whose server-side splitter is reported to end a trigger at its FIRST
 * `END` outside parentheses (workers-sdk#4727: a CASE ... END in the body is then "incomplete input",
 * 7500) and to stumble on `;` and unbalanced `'` in comments (workers-sdk#3892, #4713, #4767). Local
 * D1 (and readD1Migrations) split with wrangler's own parser and never see either, so the files are
 * held to the narrower rule here: no migration was ever applied remotely before these checks.
 */
const codeOf = (sql: string) => sql.replace(/'(?:[^']|'')*'/g, "''").replace(/--[^\n]*/g, " ");
const commentsOf = (sql: string) => [...sql.replace(/'(?:[^']|'')*'/g, "''").matchAll(/--[^\n]*/g)].map((m) => m[0]);

describe("migrations are written for remote D1's splitter", () => {
  it("every CREATE TRIGGER has exactly one END outside parentheses (no CASE … END in a body: iif instead)", () => {
    const offenders: string[] = [];
    for (const m of ALL) for (const q of m.queries) {
      const code = codeOf(q);
      if (!/\bCREATE\s+TRIGGER\b/i.test(code)) continue;
      let depth = 0;
      let bareEnds = 0;
      for (const tok of code.match(/\(|\)|\b\w+\b/g) ?? []) {
        if (tok === "(") depth++;
        else if (tok === ")") depth--;
        else if (/^END$/i.test(tok) && depth === 0) bareEnds++;
      }
      if (bareEnds !== 1) offenders.push(`${m.name}: ${code.match(/CREATE\s+TRIGGER\s+(\w+)/i)![1]} has ${bareEnds} END outside parentheses`);
    }
    expect(offenders).toEqual([]);
  });

  it("no comment holds a ; or a ' (write `…` and ’ in comments)", () => {
    const offenders = ALL.flatMap((m) => m.queries.flatMap((q) => commentsOf(q).filter((c) => /[;']/.test(c)).map((c) => `${m.name}: ${c}`)));
    expect(offenders).toEqual([]);
  });
});

/**
 * What remote D1 refuses or mis-splits in a migration, checked on the statements as wrangler splits
 * them (README "Deploy"): transaction control (D1 runs each migration in its own transaction and
 * refuses BEGIN, COMMIT and SAVEPOINT, workerd#5411); a PRAGMA outside D1's list
 * (https://developers.cloudflare.com/d1/sql-api/sql-statements/), or `foreign_keys`, which a
 * migration cannot change (https://developers.cloudflare.com/d1/sql-api/foreign-keys/: use
 * `defer_foreign_keys`); ATTACH, DETACH, VACUUM; a trigger whose BEGIN or END is not upper case
 * (the /query splitter misses a lower-case `begin`, workers-sdk#10998); a carriage return (CRLF files
 * with triggers fail remotely, workers-sdk#14991); a file over 100,000 bytes (wrangler sends it as one
 * SQL string, and D1 allows 100 KB of SQL per query, developers.cloudflare.com/d1/platform/limits/).
 */
const D1_PRAGMAS = new Set([
  "table_list", "table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "quick_check", "foreign_key_check",
  "foreign_key_list", "case_sensitive_like", "ignore_check_constraints", "legacy_alter_table", "recursive_triggers",
  "reverse_unordered_selects", "defer_foreign_keys", "optimize",
]);
function remoteD1Problems(m: { name: string; queries: string[] }): string[] {
  const out: string[] = [];
  const bytes = new TextEncoder().encode(m.queries.join(";\n")).length;
  if (bytes > D1_LIMITS.sqlBytes) out.push(`${m.name}: ${bytes} bytes, over D1's 100 KB of SQL`);
  for (const q of m.queries) {
    if (q.includes("\r")) out.push(`${m.name}: a carriage return (save the file with LF line ends)`);
    const code = codeOf(q).trim();
    const head = /^(\w+)(?:\s+(\w+))?/.exec(code);
    const verb = head?.[1]?.toUpperCase();
    if (verb && ["BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"].includes(verb)) out.push(`${m.name}: transaction control (${head![0]})`);
    if (verb && ["ATTACH", "DETACH", "VACUUM"].includes(verb)) out.push(`${m.name}: ${verb}`);
    if (verb === "PRAGMA") {
      const name = head![2]?.toLowerCase() ?? "";
      if (!D1_PRAGMAS.has(name)) out.push(`${m.name}: PRAGMA ${name}${name === "foreign_keys" ? " (a migration cannot change it on D1: defer_foreign_keys)" : " is not one D1 supports"}`);
    }
    if (/^CREATE\s+(TEMP(ORARY)?\s+)?TRIGGER\b/i.test(code)) {
      for (const w of code.match(/\b(begin|end)\b/gi) ?? []) if (w !== w.toUpperCase()) out.push(`${m.name}: a trigger with a lower-case ${w}`);
    }
  }
  return out;
}

describe("migrations hold to remote D1's rules (README “Deploy”)", () => {
  it("no transaction control, PRAGMA outside D1's list, ATTACH/VACUUM, lower-case trigger BEGIN/END, CR or file over 100 KB", () => {
    expect(ALL.flatMap(remoteD1Problems)).toEqual([]);
  });

  it("the check finds each of them", () => {
    const bad = (q: string) => remoteD1Problems({ name: "x", queries: [q] });
    expect(bad("BEGIN TRANSACTION")).toEqual(["x: transaction control (BEGIN TRANSACTION)"]);
    expect(bad("-- a comment\nCOMMIT")).toEqual(["x: transaction control (COMMIT)"]);
    expect(bad("SAVEPOINT a")).toHaveLength(1);
    expect(bad("PRAGMA foreign_keys = off")).toEqual(["x: PRAGMA foreign_keys (a migration cannot change it on D1: defer_foreign_keys)"]);
    expect(bad("PRAGMA journal_mode = WAL")).toEqual(["x: PRAGMA journal_mode is not one D1 supports"]);
    expect(bad("PRAGMA defer_foreign_keys = on")).toEqual([]);
    expect(bad("ATTACH DATABASE 'x' AS y")).toEqual(["x: ATTACH"]);
    expect(bad("CREATE TRIGGER t AFTER INSERT ON a\nbegin\n  SELECT 1;\nEND")).toEqual(["x: a trigger with a lower-case begin"]);
    expect(bad("CREATE TRIGGER t AFTER INSERT ON a\r\nBEGIN\r\n  SELECT 'begin';\r\nEND")).toEqual(["x: a carriage return (save the file with LF line ends)"]);
    expect(bad(`INSERT INTO a VALUES ('${"x".repeat(100_001)}')`)).toHaveLength(1);
  });

  it("every table has at most 100 columns (D1's limit, local SQLite allows 2,000)", async () => {
    const tables = (await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").all<{ name: string }>()).results;
    expect(tables.length).toBeGreaterThan(10);
    const wide: string[] = [];
    for (const { name } of tables) {
      const n = (await env.DB.prepare(`PRAGMA table_info("${name}")`).all()).results.length;
      expect(n, name).toBeGreaterThan(0);
      if (n > D1_LIMITS.columnsPerTable) wide.push(`${name}: ${n} columns`);
    }
    expect(wide).toEqual([]);
  });
});
