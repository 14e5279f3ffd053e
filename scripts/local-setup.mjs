// Local database setup shared by `npm run dev` (scripts/dev.mjs) and the browser test: local
// secrets, D1 migrations, the demo merchant with its keys, and the demo customers' histories.
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { demoSeedSql } from "./demo-data.mjs";

/** Runs wrangler with the given arguments; on failure prints its output and exits. */
export function wrangler(...wargs) {
  const res = spawnSync("wrangler", wargs, { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8", env: { WRANGLER_SEND_METRICS: "false", ...process.env } });
  if (res.status !== 0) {
    process.stderr.write((res.stdout ?? "") + (res.stderr ?? "") + (res.error ? String(res.error) : ""));
    process.exit(res.status ?? 1);
  }
  return res.stdout;
}

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
  wrangler("d1", "migrations", "apply", "DB", "--local", ...wranglerArgs);

  log("Seeding the demo merchant…");
  const dir = mkdtempSync(join(tmpdir(), "tap2-seed-"));
  const seedFile = join(dir, "seed.sql");
  const { extraSeedSql } = await import("./demo-customers.mjs").catch(() => ({ extraSeedSql: () => "" }));
  writeFileSync(seedFile, demoSeedSql() + "\n" + extraSeedSql());
  wrangler("d1", "execute", "DB", "--local", "--file", seedFile, ...wranglerArgs);
}
