// `npm run dev [-- <wrangler dev flags>]`: local secrets, migrations, demo data, then wrangler dev.
import { spawn } from "node:child_process";
import { DEMO_MERCHANT_ID, DEMO_PUBLISHABLE_KEY, DEMO_SECRET_KEY } from "./demo-data.mjs";
import { cronDue, readCrons } from "./lib/cron.mjs";
import { devFlags } from "./lib/devFlags.mjs";
import { descendantPids, portTaken } from "./lib/processes.mjs";
import { ensureDevVars, prepareLocalDatabase } from "./local-setup.mjs";

const { port, host, persistArgs, configArgs, configPath, wranglerArgs } = devFlags(process.argv.slice(2));

// Checked first, so a taken port costs no migration run; wrangler's own check (--port is explicit) covers a race.
if (await portTaken(port, host)) {
  console.error(`Port ${port} is already in use on ${host} (another \`npm run dev\` or \`wrangler dev\`?).
Stop that server, or choose another port: npm run dev -- --port ${port + 1}`);
  process.exit(1);
}

if (ensureDevVars()) {
  console.log("Created .dev.vars from .dev.vars.example (local secrets; edit as you like).");
}

await prepareLocalDatabase([...persistArgs, ...configArgs]);

const crons = readCrons(configPath);
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

const child = spawn("wrangler", ["dev", ...wranglerArgs], { stdio: "inherit", env: { WRANGLER_SEND_METRICS: "false", ...process.env } });
superviseWrangler(child);

/**
 * Stops wrangler on Ctrl-C, SIGTERM or SIGHUP, and when our parent goes away: `kill <npm pid>` (IDE
 * stop buttons, supervisors) ends npm without signalling us, and we are re-parented. Whatever
 * wrangler leaves of its process tree (workerd) is killed once it exits, or after 5 s.
 */
function superviseWrangler(wrangler) {
  let tree = null;
  const kill = (pids) => {
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
  };
  const stop = (signal) => {
    if (tree) return;
    tree = descendantPids(wrangler.pid); // while wrangler still owns workerd: once it exits, workerd is init's
    wrangler.kill(signal);
    setTimeout(() => {
      kill([wrangler.pid, ...tree]);
      process.exit(1);
    }, 5_000).unref();
  };
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => stop(sig));
  const parent = process.ppid;
  setInterval(() => process.ppid !== parent && stop("SIGTERM"), 1_000).unref();
  wrangler.on("exit", (code) => {
    kill(tree ?? []);
    process.exit(code ?? 0);
  });
}

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
