import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { admin, createMerchant } from "../helpers/fixtures";

/**
 * Migration 0016: a write of a merchant row that does not set updated_at itself (an operator's SQL)
 * now moves it on, with the version, so GET tells when the merchant last changed and the rate
 * limiter, which orders configs by updated_at, sees that write as a newer config.
 */
type Row = { updated_at: string; version: number };
const row = async (id: string) => (await env.DB.prepare("SELECT updated_at, version FROM merchants WHERE id = ?").bind(id).first<Row>())!;
const operatorSql = (id: string) => env.DB.prepare("UPDATE merchants SET config = json_set(config, '$.holdout_percent', 7) WHERE id = ?").bind(id).run();

describe("migration 0016: a write that keeps updated_at moves it on", () => {
  it("exists", () => {
    expect(env.TEST_MIGRATIONS.some((m) => m.name === "0016_merchant_updated_at_bump.sql")).toBe(true);
  });

  it("an operator's SQL: updated_at becomes now (ISO, milliseconds, like the API writes it) and the version moves on once", async () => {
    const m = await createMerchant();
    const old = await row(m.merchantId);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const t0 = new Date(Date.now() - 1).toISOString();
    await operatorSql(m.merchantId);
    const t1 = new Date(Date.now() + 1).toISOString();
    const now = await row(m.merchantId);
    expect(now.version).toBe(old.version + 1);
    expect(now.updated_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(now.updated_at > old.updated_at).toBe(true);
    expect(now.updated_at >= t0 && now.updated_at <= t1).toBe(true);
    const read = await admin(`/v1/admin/merchants/${m.merchantId}`);
    expect(read.headers.get("ETag")).toBe(`"v${now.version}"`);
    expect((await read.json<{ updated_at: string; holdout_percent: number }>())).toMatchObject({ updated_at: now.updated_at, holdout_percent: 7 });
  });

  it("a stored updated_at ahead of the clock is passed by 1 ms, never repeated or gone back on", async () => {
    const m = await createMerchant();
    await env.DB.prepare("UPDATE merchants SET updated_at = '2999-01-01T00:00:00.999Z' WHERE id = ?").bind(m.merchantId).run();
    await operatorSql(m.merchantId);
    expect((await row(m.merchantId)).updated_at).toBe("2999-01-01T00:00:01.000Z");
  });

  it("a write that sets updated_at keeps its value; a PATCH is unchanged (its own updated_at, the version moved once)", async () => {
    const m = await createMerchant();
    const v = (await row(m.merchantId)).version;
    await env.DB.prepare("UPDATE merchants SET name = 'Set by hand', updated_at = '2026-01-02T03:04:05.006Z' WHERE id = ?").bind(m.merchantId).run();
    expect(await row(m.merchantId)).toEqual({ updated_at: "2026-01-02T03:04:05.006Z", version: v + 1 });

    const res = await admin(`/v1/admin/merchants/${m.merchantId}`, { method: "PATCH", body: JSON.stringify({ name: "Patched" }) });
    expect(res.status).toBe(200);
    const patched = await res.json<{ updated_at: string }>();
    expect(await row(m.merchantId)).toEqual({ updated_at: patched.updated_at, version: v + 2 });
  });

  it("the origins lookup table still follows the row (the inner UPDATE fires no other trigger)", async () => {
    const m = await createMerchant({ allowed_origins: ["https://one.example"] });
    await env.DB.prepare("UPDATE merchants SET config = json_set(config, '$.allowed_origins', json('[\"https://two.example\"]')) WHERE id = ?").bind(m.merchantId).run();
    const origins = await env.DB.prepare("SELECT origin FROM merchant_origins WHERE merchant_id = ?").bind(m.merchantId).all<{ origin: string }>();
    expect(origins.results.map((r) => r.origin)).toEqual(["https://two.example"]);
  });
});
