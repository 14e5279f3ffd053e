import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { widestFunctionCall } from "../helpers/d1Sql";

const list = (n: number, item: (i: number) => string) => Array.from({ length: n }, (_, i) => item(i)).join(", ");

/**
 * test/helpers/setup.ts holds every test to remote D1's per-query limits
 * (https://developers.cloudflare.com/d1/platform/limits/), which local D1 does not enforce.
 */
describe("a statement past a limit of remote D1 fails in tests, as it would on D1", () => {
  it("100 bound parameters", async () => {
    expect(() => env.DB.prepare(`SELECT ${list(101, () => "?")}`).bind(...Array(101).fill(1))).toThrow(/100 bound parameters/);
    expect(await env.DB.prepare(`SELECT ${list(100, () => "?")}`).bind(...Array(100).fill(1)).first()).not.toBeNull();
  });

  it("100 KB of SQL, counted in bytes of UTF-8 (a statement of 40,000 € is 40,000 characters but 120,000 bytes)", async () => {
    expect(() => env.DB.prepare("SELECT 1 -- " + "x".repeat(100_001))).toThrow(/100 KB/);
    expect(() => env.DB.prepare("SELECT 1 -- " + "€".repeat(40_000))).toThrow(/100 KB.*120012 bytes/);
    expect(await env.DB.prepare("SELECT 1 AS n -- " + "€".repeat(33_000)).first("n")).toBe(1);
  });

  it("32 arguments per SQL function (local SQLite takes 40 without complaint)", async () => {
    expect(() => env.DB.prepare(`SELECT json_array(${list(33, (i) => String(i))})`)).toThrow(/32 arguments.*json_array\(\) with 33/);
    expect(() => env.DB.prepare(`SELECT 1 FROM (SELECT 1) WHERE coalesce(NULL, max(${list(40, (i) => String(i))})) > 0`)).toThrow(/max\(\) with 40/);
    expect(await env.DB.prepare(`SELECT json_array(${list(32, (i) => String(i))}) AS a`).first("a")).toBe(JSON.stringify(Array.from({ length: 32 }, (_, i) => i)));
  });

  it("2,000,000 bytes per bound string or BLOB", async () => {
    expect(() => env.DB.prepare("SELECT length(?)").bind("x".repeat(2_000_001))).toThrow(/2,000,000 bytes/);
    expect(() => env.DB.prepare("SELECT length(?)").bind("€".repeat(700_000))).toThrow(/2,000,000 bytes.*2100000/);
    expect(() => env.DB.prepare("SELECT length(?)").bind(new Uint8Array(2_000_001))).toThrow(/2,000,000 bytes/);
    expect(await env.DB.prepare("SELECT length(?) AS n").bind("x".repeat(2_000_000)).first("n")).toBe(2_000_000);
  });

  it("the argument count reads code only: commas in literals, comments and nested calls are not arguments", () => {
    expect(widestFunctionCall("SELECT coalesce(a, 'x, y, z', \"c,d\") -- max(1,2,3,4)")).toEqual({ name: "coalesce", args: 3 });
    expect(widestFunctionCall("SELECT count(*), random(), substr(x, instr(x, ','), 2) FROM t")).toEqual({ name: "substr", args: 3 });
    expect(widestFunctionCall(`INSERT INTO t (${list(40, (i) => `c${i}`)}) VALUES (${list(40, () => "?")})`)).toBeNull();
  });
});

/**
 * What remote D1 refuses that local D1 refuses too, because both run workerd's SQLite authorizer:
 * the suite needs no check of its own for these, and this test fails if Miniflare stops refusing them.
 * Remote: BEGIN/SAVEPOINT (workerd#5411), PRAGMAs outside D1's list
 * (https://developers.cloudflare.com/d1/sql-api/sql-statements/), LIKE/GLOB patterns over 50 bytes
 * (limits page).
 */
describe("local D1 refuses what remote D1 refuses", () => {
  it("transaction control: BEGIN, SAVEPOINT", async () => {
    await expect(env.DB.prepare("BEGIN TRANSACTION").run()).rejects.toThrow(/state\.storage\.transaction/);
    await expect(env.DB.prepare("SAVEPOINT s").run()).rejects.toThrow(/state\.storage\.transaction/);
  });

  it("PRAGMAs outside D1's list, ATTACH and a table named _cf_… (D1's own); D1's own (foreign_keys, defer_foreign_keys, optimize, table_info) run", async () => {
    for (const sql of ["PRAGMA journal_mode", "PRAGMA user_version = 1", "PRAGMA integrity_check", "ATTACH DATABASE ':memory:' AS other", "CREATE TABLE _cf_mine (a)"]) {
      await expect(env.DB.prepare(sql).run(), sql).rejects.toThrow(/not authorized/);
    }
    expect(await env.DB.prepare("PRAGMA foreign_keys").first("foreign_keys")).toBe(1); // D1 enforces foreign keys, here too
    for (const sql of ["PRAGMA defer_foreign_keys = on", "PRAGMA optimize", "PRAGMA table_info(merchants)"]) await env.DB.prepare(sql).run();
  });

  it("a LIKE or GLOB pattern of more than 50 bytes", async () => {
    await expect(env.DB.prepare(`SELECT 'a' LIKE '${"a".repeat(51)}'`).run()).rejects.toThrow(/pattern too complex/);
    expect(await env.DB.prepare(`SELECT 'a' LIKE '${"%".repeat(50)}' AS m`).first("m")).toBe(1);
  });
});
