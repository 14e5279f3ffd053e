import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";

/**
 * Migration 0015 rebuilds consent_log so that its `reason` CHECK admits 'erasure'. The schema of
 * this file's D1 came from every migration (setup.ts); here rows stand for a log written before it,
 * and the migration's own statements (as readD1Migrations split them) run again over them: the
 * rebuild keeps every row with its id, the indexes, and the order of new ids after the old ones.
 */
const migration = env.TEST_MIGRATIONS.find((m) => m.name.startsWith("0015_"));
const runMigration = () => env.DB.batch(migration!.queries.map((q) => env.DB.prepare(q)));

type Row = { id: number; merchant_id: string; customer_ref: string; consent_type: string; action: string; created_at: string; reason: string | null };
const all = async () => (await env.DB.prepare("SELECT * FROM consent_log WHERE merchant_id LIKE 'm_mig15%' ORDER BY id").all<Row>()).results;
const insert = (ref: string, type: string, action: string, reason: string | null) =>
  env.DB.prepare("INSERT INTO consent_log (merchant_id, customer_ref, consent_type, action, created_at, reason) VALUES ('m_mig15', ?, ?, ?, '2026-03-01T10:00:00.000Z', ?)").bind(ref, type, action, reason).run();

describe("migration 0015: consent_log admits the reason 'erasure'", () => {
  it("exists", () => {
    expect(migration?.name).toBe("0015_consent_log_erasure_reason.sql");
  });

  it("keeps every row with its id and the indexes; new ids follow the old ones; the CHECKs still hold", async () => {
    await insert("c_a", "personalization", "revoked", null);
    await insert("c_a", "cross_merchant", "granted", null);
    await insert("c_b", "cross_merchant", "revoked", "retention");
    // A gap at the end: the newest row was deleted, so its id must not come back.
    await insert("c_gone", "personalization", "granted", null);
    const top = (await env.DB.prepare("SELECT max(id) AS id FROM consent_log").first<{ id: number }>())!.id;
    await env.DB.prepare("DELETE FROM consent_log WHERE merchant_id = 'm_mig15' AND customer_ref = 'c_gone'").run();
    const before = await all();

    await runMigration();

    expect(await all()).toEqual(before);
    const indexes = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'consent_log' ORDER BY name").all<{ name: string }>();
    expect(indexes.results.map((r) => r.name)).toEqual(["idx_consent_log_created", "idx_consent_log_customer"]);
    expect((await env.DB.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'consent_log_new'").first<{ n: number }>())!.n).toBe(0);

    await insert("c_c", "cross_merchant", "revoked", "erasure");
    const added = (await all()).at(-1)!;
    expect(added).toMatchObject({ customer_ref: "c_c", reason: "erasure" });
    expect(added.id).toBeGreaterThan(top);
    await expect(insert("c_c", "cross_merchant", "revoked", "bogus")).rejects.toThrow(/CHECK constraint failed/);
    await expect(insert("c_c", "marketing", "granted", null)).rejects.toThrow(/CHECK constraint failed/);
    await expect(insert("c_c", "personalization", "paused", null)).rejects.toThrow(/CHECK constraint failed/);
  });
});
