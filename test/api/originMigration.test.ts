import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { canonicalOrigin } from "../../src/schemas/merchant";
import { merchantsAllowingOrigin } from "../../src/storage/merchants";
import { admin, BASE, uniqueMerchantId } from "../helpers/fixtures";

/**
 * Migration 0014 rewrites allowed_origins saved before they were stored canonically. The schema of
 * this file's D1 came from every migration (setup.ts) on an empty database; here rows are written
 * as the code before canonicalization wrote them, and the migration's own statements (as
 * readD1Migrations split them) run again over them. It is safe to run again: its work table is
 * dropped at the end, and an origin already canonical is left alone.
 */
const migration = env.TEST_MIGRATIONS.find((m) => m.name.startsWith("0014_"));
const statementsOf = (prefix: string) => env.TEST_MIGRATIONS.find((m) => m.name.startsWith(prefix))!.queries;
/**
 * 0014 ran under the version trigger of 0013 (bump the version, leave updated_at alone); 0016
 * replaced it with one that also moves updated_at. To test 0014 as it ran, 0013's trigger is put
 * back for the run and 0016's restored after it.
 */
const trigger0013 = statementsOf("0013_").find((q) => q.includes("CREATE TRIGGER merchants_version_bump"))!;
const trigger0016 = statementsOf("0016_");
async function runMigration(): Promise<void> {
  await env.DB.batch(["DROP TRIGGER merchants_version_bump", trigger0013].map((q) => env.DB.prepare(q)));
  try {
    await env.DB.batch(migration!.queries.map((q) => env.DB.prepare(q)));
  } finally {
    await env.DB.batch(trigger0016.map((q) => env.DB.prepare(q)));
  }
}

/** A merchant row as the API wrote it before origins were canonicalized (the 0009 trigger fills merchant_origins). */
async function legacyMerchant(allowedOrigins: string[]): Promise<string> {
  const id = uniqueMerchantId("legacy");
  const config = { methods: ["visa", "paypal"], allowed_origins: allowedOrigins, rate_limit: null, holdout_percent: 0, features: { targeted_offers: false, cross_merchant: false }, offers: [], scoring_weights: {} };
  await env.DB.prepare("INSERT INTO merchants (id, name, tier, config, created_at, updated_at) VALUES (?, 'Legacy', 'starter', ?, '2026-01-05T10:00:00.000Z', '2026-01-05T10:00:00.000Z')")
    .bind(id, JSON.stringify(config))
    .run();
  return id;
}

const rowOf = (id: string) => env.DB.prepare("SELECT config, updated_at, version FROM merchants WHERE id = ?").bind(id).first<{ config: string; updated_at: string; version: number }>();
const originsOf = async (id: string) =>
  (await env.DB.prepare("SELECT origin FROM merchant_origins WHERE merchant_id = ? ORDER BY origin").bind(id).all<{ origin: string }>()).results.map((r) => r.origin);

/** Past the one-minute memo of merchantsAllowingOrigin, a little further each call. */
let clock = Date.now() + 3_600_000;
const lookup = (origin: string) => merchantsAllowingOrigin(env.DB, origin, (clock += 61_000));

describe("migration 0014: allowed_origins in canonical form", () => {
  it("exists", () => {
    expect(migration?.name).toBe("0014_canonical_origins.sql");
  });

  it("rewrites merchants.config and merchant_origins; spellings of one origin become one; updated_at kept, the version moved on", async () => {
    const shop = await legacyMerchant(["https://Old.Example:443", "https://old.example", "http://127.0.0.1:80", "https://Shop.Example:08443", "HTTP://Dev.Example:80/"]);
    const other = await legacyMerchant(["https://OLD.example"]);
    const untouched = await legacyMerchant(["https://fine.example"]);
    const before = { shop: await rowOf(shop), other: await rowOf(other), untouched: await rowOf(untouched) };
    const viewBefore = await (await admin(`/v1/admin/merchants/${shop}`)).json();
    expect(await originsOf(shop)).toEqual(["HTTP://Dev.Example:80/", "http://127.0.0.1:80", "https://Old.Example:443", "https://Shop.Example:08443", "https://old.example"].sort());
    // The defect: a keyless preflight looks merchant_origins up by what a browser sends.
    expect(await lookup("http://127.0.0.1")).toEqual([]);
    // (https://shop.example:8443 is asked for by a real preflight below, so it must not be in the memo.)

    await runMigration();
    const triggerNow = await env.DB.prepare("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'merchants_version_bump'").first<{ sql: string }>();
    expect(triggerNow?.sql).toContain("updated_at = iif("); // 0016's trigger is back for the tests after this one

    const after = { shop: (await rowOf(shop))!, other: (await rowOf(other))!, untouched: (await rowOf(untouched))! };
    expect(JSON.parse(after.shop.config).allowed_origins).toEqual(["https://old.example", "http://127.0.0.1", "https://shop.example:8443", "http://dev.example"]);
    expect(JSON.parse(after.other.config).allowed_origins).toEqual(["https://old.example"]);
    expect(after.untouched).toEqual(before.untouched); // nothing to rewrite: not written at all
    expect(await originsOf(shop)).toEqual(["http://127.0.0.1", "http://dev.example", "https://old.example", "https://shop.example:8443"]);
    expect(await originsOf(other)).toEqual(["https://old.example"]);
    for (const k of ["shop", "other"] as const) {
      expect(after[k].updated_at).toBe(before[k]!.updated_at);
      expect(after[k].version).toBe(before[k]!.version + 1);
      // The rest of the config is as it was.
      expect({ ...JSON.parse(after[k].config), allowed_origins: null }).toEqual({ ...JSON.parse(before[k]!.config), allowed_origins: null });
    }
    // The merchant the API shows was canonical already (read-time canonicalization): unchanged.
    expect(await (await admin(`/v1/admin/merchants/${shop}`)).json()).toEqual(viewBefore);
    expect(await lookup("http://127.0.0.1")).toEqual([shop]);
    expect((await lookup("https://old.example")).sort()).toEqual([shop, other].sort());
    const preflight = await SELF.fetch(`${BASE}/v1/personalize/methods`, {
      method: "OPTIONS",
      headers: { Origin: "https://shop.example:8443", "Access-Control-Request-Method": "GET" },
    });
    expect(preflight.headers.get("Access-Control-Allow-Origin")).toBe("https://shop.example:8443");
  });

  it("merchant_origins rows out of step with their merchant are rewritten too, collapsing into one row (primary key)", async () => {
    const id = uniqueMerchantId("stray");
    await env.DB.prepare("INSERT INTO merchant_origins (origin, merchant_id) VALUES ('https://Stray.Example:443', ?1), ('https://stray.example', ?1), ('https://STRAY.example', ?1), ('http://Stray.Example:8080', ?1)")
      .bind(id)
      .run();
    await runMigration();
    expect(await originsOf(id)).toEqual(["http://stray.example:8080", "https://stray.example"]);
  });

  it("writes what canonicalOrigin (new URL().origin) writes, or leaves the spelling alone where SQL cannot tell", async () => {
    const rewritten = [
      "https://Shop.Example", "https://shop.example:443", "HTTPS://SHOP.EXAMPLE:443", "http://shop.example:80", "http://Shop.Example:0080",
      "https://shop.example:80", "http://shop.example:443", "https://shop.example:00443", "https://shop.example:8443", "http://LOCALHOST:3000",
      "http://127.0.0.1:80", "http://10.0.0.255:8080", "https://0.0.0.0", "https://shop.example/", "https://shop.example:443//",
      "https://shop.example:", "https://a-b.c-d.example", "https://v2.API.Example", "https://0x1.example", "https://Shop.Example.",
      "https://1a.example", "https://example.1a", "https://shop.example:65535", "https://shop.example:0",
    ];
    // Left as written: IPv4 forms URL rewrites (127.1, octal, hex) and punycode labels, which SQL cannot
    // reproduce (the next PATCH that changes the merchant stores them canonical), and what URL refuses.
    const leftAlone = [
      "http://127.1", "http://0x7F.0.0.1", "http://010.0.0.1", "http://1.2.3.256", "http://shop.123", "https://XN--bcher-kva.example", "https://shop.example:65536",
      "https://shop.example:99999", "http://1.2.3.4.", "https://SHOP.0x", "ftp://Shop.Example", "https://Shop.Example/path",
    ];
    const out = await migrate([...rewritten, ...leftAlone]);
    expect(rewritten.map((o) => [o, out.get(o)])).toEqual(rewritten.map((o) => [o, canonicalOrigin(o)]));
    expect(leftAlone.map((o) => [o, out.get(o)])).toEqual(leftAlone.map((o) => [o, o]));
  });

  it("over generated spellings: every rewrite equals canonicalOrigin, and every canonical origin is left as it is", async () => {
    let seed = 20260205; // a fixed seed: the same spellings every run
    const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0), (seed >>> 8) % n);
    const pick = <T,>(list: T[]) => list[rand(list.length)]!;
    const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-";
    const label = () =>
      rand(3) === 0
        ? pick(["0", "1", "255", "256", "010", "0x", "0x1F", "0X1f", "0xg", "xn--bcher-kva", "xn--", "", "07", "4294967295"])
        : Array.from({ length: 1 + rand(6) }, () => chars[rand(chars.length)]).join("");
    const spellings = new Set<string>();
    for (let i = 0; i < 100_000 && spellings.size < 2_000; i++) {
      const host = Array.from({ length: 1 + rand(4) }, label).join(".") + (rand(8) === 0 ? "." : "");
      const port = pick(["", "", "", ":", ":80", ":443", ":0443", ":080", ":8080", ":0", ":65535", ":65536", ":99999", ":00000443"]);
      spellings.add(`${pick(["http", "https", "HTTP", "Https"])}://${host}${port}${rand(10) === 0 ? "/" : ""}`);
    }
    const list = [...spellings];
    const out = await migrate(list);
    const wrong = list.filter((o) => out.get(o) !== o && out.get(o) !== canonicalOrigin(o));
    expect(wrong.map((o) => [o, out.get(o), canonicalOrigin(o)])).toEqual([]);
    // A canonical origin is never touched (so the rewrite is idempotent, and safe to run twice).
    expect(list.filter((o) => canonicalOrigin(o) === o && out.get(o) !== o)).toEqual([]);
    // The generator does reach both sides.
    const changed = list.filter((o) => out.get(o) !== o).length;
    const leftNonCanonical = list.filter((o) => out.get(o) === o && canonicalOrigin(o) !== o).length;
    expect(changed).toBeGreaterThan(500);
    expect(leftNonCanonical).toBeGreaterThan(50);
  });
});

/** Each spelling as a merchant_origins row of its own (merchant id = its index), migrated; spelling → result. */
async function migrate(spellings: string[]): Promise<Map<string, string>> {
  const prefix = uniqueMerchantId("p");
  await env.DB.prepare("INSERT INTO merchant_origins (origin, merchant_id) SELECT value, ? || '_' || key FROM json_each(?)").bind(prefix, JSON.stringify(spellings)).run();
  await runMigration();
  const { results } = await env.DB.prepare("SELECT origin, merchant_id FROM merchant_origins WHERE merchant_id LIKE ? || '\\_%' ESCAPE '\\'").bind(prefix).all<{ origin: string; merchant_id: string }>();
  await env.DB.prepare("DELETE FROM merchant_origins WHERE merchant_id LIKE ? || '\\_%' ESCAPE '\\'").bind(prefix).run();
  expect(results.length).toBe(spellings.length);
  return new Map(results.map((r) => [spellings[Number(r.merchant_id.slice(prefix.length + 1))]!, r.origin]));
}
