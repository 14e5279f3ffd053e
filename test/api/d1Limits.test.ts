import { env } from "cloudflare:test";
import { expect, it } from "vitest";
/** test/helpers/setup.ts holds every test to D1's per-query limits, which Miniflare does not enforce. */
it("a statement past 100 bound parameters or 100 KB of SQL fails in tests, as it would on D1", async () => {
  expect(() => env.DB.prepare(`SELECT ${Array.from({ length: 101 }, () => "?").join(",")}`).bind(...Array(101).fill(1))).toThrow(/100 bound parameters/);
  expect(await env.DB.prepare(`SELECT ${Array.from({ length: 100 }, () => "?").join(",")}`).bind(...Array(100).fill(1)).first()).not.toBeNull();
  expect(() => env.DB.prepare("SELECT 1 -- " + "x".repeat(100_001))).toThrow(/100 KB/);
});
