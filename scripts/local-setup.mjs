// Local database setup shared by `npm run dev` (scripts/dev.mjs) and the browser test: local
// secrets, D1 migrations, the demo merchant with its keys, and the demo customers' histories.
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { demoSeedSql } from "./demo-data.mjs";
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
  await seedDemoData(wranglerArgs);
}

/** The demo merchant, its keys and the demo customers' histories, into a migrated local D1. */
export async function seedDemoData(wranglerArgs = []) {
  const dir = mkdtempSync(join(tmpdir(), "tap2-seed-"));
  try {
    const seedFile = join(dir, "seed.sql");
    const { extraSeedSql } = await import("./demo-customers.mjs").catch(() => ({ extraSeedSql: () => "" }));
    writeFileSync(seedFile, demoSeedSql() + "\n" + extraSeedSql());
    runWrangler(["d1", "execute", "DB", "--local", "--file", seedFile, ...wranglerArgs]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
