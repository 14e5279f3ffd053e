// Local database setup shared by `npm run dev` (scripts/dev.mjs) and the browser test: local
// secrets, D1 migrations, the demo merchant with its keys, and the demo customers' histories.
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { demoSeedSql, keyCacheKey } from "./demo-data.mjs";
import { runWrangler } from "./lib/localWorker.mjs";

/** Creates .dev.vars from .dev.vars.example when missing; true when it did. */
export function ensureDevVars() {
  if (existsSync(".dev.vars")) return false;
  copyFileSync(".dev.vars.example", ".dev.vars");
  return true;
}

/** The KEY=value pairs of .dev.vars. */
export function readDevVars(file = ".dev.vars") {
  const vars = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^\s*([A-Z0-9_]+)\s*=\s*"?(.*?)"?\s*$/.exec(line);
    if (m) vars[m[1]] = m[2];
  }
  return vars;
}

/** Applies the migrations and the (idempotent) demo seed to the local D1 of `wranglerArgs` (--persist-to, -c). */
export async function prepareLocalDatabase(wranglerArgs = [], log = console.log) {
  log("Applying D1 migrations (local)…");
  runWrangler(["d1", "migrations", "apply", "DB", "--local", ...wranglerArgs]);
  log("Seeding the demo merchant…");
  const { reactivatedKeys, erasedCustomers } = await seedDemoData(wranglerArgs);
  if (reactivatedKeys.length > 0) log(`Re-activated the revoked demo key(s) ${reactivatedKeys.join(", ")}: the local demo keys are fixed and work after every start.`);
  for (const { customer, status } of erasedCustomers) {
    const back = status === "pending" ? "restore it (POST …/restore)" : "start from a fresh local state";
    log(`Not seeding ${customer}: it has a ${status} deletion (to get its demo history back, ${back}).`);
  }
}

/**
 * The demo merchant, its keys and the demo customers' histories, into a migrated local D1. Says
 * which revoked demo keys it re-activated and which demo customers it skipped as erased.
 */
export async function seedDemoData(wranglerArgs = []) {
  const dir = mkdtempSync(join(tmpdir(), "tap2-seed-"));
  let rows;
  try {
    const seedFile = join(dir, "seed.sql");
    const { extraSeedSql } = await import("./demo-customers.mjs").catch(() => ({ extraSeedSql: () => "" }));
    writeFileSync(seedFile, demoSeedSql() + "\n" + extraSeedSql());
    const out = runWrangler(["d1", "execute", "DB", "--local", "--file", seedFile, "--json", ...wranglerArgs]);
    rows = JSON.parse(out.slice(out.indexOf("["))).flatMap((statement) => statement.results ?? []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const reactivated = rows.filter((r) => r.reactivated_demo_key);
  // The worker cached the revoked record in KV (trusted 45 s): drop it, so the key works at once.
  for (const { key_hash } of reactivated) {
    runWrangler(["kv", "key", "delete", "--binding", "CACHE", "--local", keyCacheKey(key_hash), ...wranglerArgs]);
  }
  return {
    reactivatedKeys: reactivated.map((r) => r.reactivated_demo_key),
    erasedCustomers: rows.filter((r) => r.erased_demo_customer).map((r) => ({ customer: r.erased_demo_customer, status: r.status })),
  };
}
