// `npm run dev [-- <wrangler dev flags>]`: local secrets, migrations, demo data, then wrangler dev.
import { spawn } from "node:child_process";
import { DEMO_MERCHANT_ID, DEMO_PUBLISHABLE_KEY, DEMO_SECRET_KEY } from "./demo-data.mjs";
import { cronDue, readCrons } from "./lib/cron.mjs";
import { ensureDevVars, prepareLocalDatabase } from "./local-setup.mjs";

const args = process.argv.slice(2);
const persistIndex = args.findIndex((a) => a === "--persist-to" || a.startsWith("--persist-to="));
const persistArgs =
  persistIndex === -1 ? [] : args[persistIndex].includes("=") ? [args[persistIndex]] : [args[persistIndex], args[persistIndex + 1]];
const configIndex = args.findIndex((a) => a === "-c" || a === "--config");
const configArgs = configIndex === -1 ? [] : [args[configIndex], args[configIndex + 1]];

if (ensureDevVars()) {
  console.log("Created .dev.vars from .dev.vars.example (local secrets; edit as you like).");
}

await prepareLocalDatabase([...persistArgs, ...configArgs]);

const crons = readCrons(configArgs[1] ?? "wrangler.toml");
const port = (() => {
  const i = args.findIndex((a) => a === "--port" || a.startsWith("--port="));
  if (i === -1) return "8787";
  return args[i].includes("=") ? args[i].split("=")[1] : args[i + 1];
})();
console.log(`
Tap2 Personalize (local)
  API             http://localhost:${port}
  Demo checkout   http://localhost:${port}/demo/
  Merchant        ${DEMO_MERCHANT_ID}
  Secret key      ${DEMO_SECRET_KEY}
  Publishable key ${DEMO_PUBLISHABLE_KEY}
  Admin token     ADMIN_TOKEN in .dev.vars
  Cron            ${crons.join(", ") || "none"} (UTC), triggered by this script when due

  curl -H "X-API-Key: ${DEMO_SECRET_KEY}" "http://localhost:${port}/v1/personalize/methods?customer_id=cus_alice"
`);

const child = spawn("wrangler", ["dev", ...args], { stdio: "inherit", env: { WRANGLER_SEND_METRICS: "false", ...process.env } });
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
child.on("exit", (code) => process.exit(code ?? 0));

// `wrangler dev` never runs the cron triggers by itself: at each UTC minute, ask it to run the due ones
// (rollups and purge every 5 minutes; planner statistics, purge and retention daily), as Cloudflare would.
const tick = async () => {
  const now = new Date();
  for (const cron of crons.filter((c) => cronDue(c, now))) {
    await fetch(`http://localhost:${port}/cdn-cgi/local/scheduled?cron=${encodeURIComponent(cron)}`).catch(() => {
      /* not listening yet, or stopping: the next one will run */
    });
  }
};
setTimeout(() => {
  void tick();
  setInterval(() => void tick(), 60_000).unref();
}, 60_000 - (Date.now() % 60_000) + 500).unref();
