// `npm run dev [-- <wrangler dev flags>]`: local secrets, migrations, demo data, then wrangler dev.
import { spawnSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEMO_MERCHANT_ID, DEMO_PUBLISHABLE_KEY, DEMO_SECRET_KEY, demoSeedSql } from "./demo-data.mjs";

const args = process.argv.slice(2);
const persistIndex = args.findIndex((a) => a === "--persist-to" || a.startsWith("--persist-to="));
const persistArgs =
  persistIndex === -1 ? [] : args[persistIndex].includes("=") ? [args[persistIndex]] : [args[persistIndex], args[persistIndex + 1]];
const configIndex = args.findIndex((a) => a === "-c" || a === "--config");
const configArgs = configIndex === -1 ? [] : [args[configIndex], args[configIndex + 1]];

function wrangler(...wargs) {
  const res = spawnSync("wrangler", wargs, { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
  if (res.status !== 0) {
    process.stderr.write(res.stdout + res.stderr);
    process.exit(res.status ?? 1);
  }
  return res.stdout;
}

if (!existsSync(".dev.vars")) {
  copyFileSync(".dev.vars.example", ".dev.vars");
  console.log("Created .dev.vars from .dev.vars.example (local secrets; edit as you like).");
}

console.log("Applying D1 migrations (local)…");
wrangler("d1", "migrations", "apply", "DB", "--local", ...persistArgs, ...configArgs);

console.log("Seeding the demo merchant…");
const dir = mkdtempSync(join(tmpdir(), "tap2-seed-"));
const seedFile = join(dir, "seed.sql");
const { extraSeedSql } = await import("./demo-customers.mjs").catch(() => ({ extraSeedSql: () => "" }));
writeFileSync(seedFile, demoSeedSql() + "\n" + extraSeedSql());
wrangler("d1", "execute", "DB", "--local", "--file", seedFile, ...persistArgs, ...configArgs);

const port = (() => {
  const i = args.findIndex((a) => a === "--port" || a.startsWith("--port="));
  if (i === -1) return "8787";
  return args[i].includes("=") ? args[i].split("=")[1] : args[i + 1];
})();
console.log(`
Tap2 Personalize (local)
  API             http://localhost:${port}
  Merchant        ${DEMO_MERCHANT_ID}
  Secret key      ${DEMO_SECRET_KEY}
  Publishable key ${DEMO_PUBLISHABLE_KEY}
  Admin token     ADMIN_TOKEN in .dev.vars

  curl -H "X-API-Key: ${DEMO_SECRET_KEY}" "http://localhost:${port}/v1/personalize/methods?customer_id=cus_alice"
`);

const child = spawn("wrangler", ["dev", ...args], { stdio: "inherit", env: { WRANGLER_SEND_METRICS: "false", ...process.env } });
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
child.on("exit", (code) => process.exit(code ?? 0));
