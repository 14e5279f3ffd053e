// `npm run dev` as a developer uses it: a real wrangler dev on local state, started, stopped and
// restarted. Runs in node (npm run test:scripts), not in workerd.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DEMO_PUBLISHABLE_KEY, DEMO_SECRET_KEY } from "../../scripts/demo-data.mjs";
import { d1Query, freePort, ROOT, TOOL_ENV } from "../../scripts/lib/localWorker.mjs";
import { readDevVars } from "../../scripts/local-setup.mjs";

const state = mkdtempSync(join(tmpdir(), "tap2-dev-test-"));
after(() => rmSync(state, { recursive: true, force: true }));

/** `npm run dev -- <args>` in a process group of its own, its output collected. */
function startDev(args) {
  const npm = spawn("npm", ["run", "dev", "--", ...args], { cwd: ROOT, env: TOOL_ENV, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  for (const stream of [npm.stdout, npm.stderr]) stream.on("data", (chunk) => (output += chunk));
  const exited = new Promise((resolve) => npm.on("exit", (code) => resolve(code)));
  const group = () => spawnSync("ps", ["-A", "-o", "pid=", "-o", "pgid=", "-o", "args="], { encoding: "utf8" }).stdout.split("\n").filter((l) => l.trim().split(/\s+/)[1] === String(npm.pid));
  const killGroup = (signal) => {
    try {
      process.kill(-npm.pid, signal);
    } catch {
      /* the group is gone */
    }
  };
  return { npm, exited, group, killGroup, output: () => output };
}

async function until(what, check, timeoutMs = 90_000) {
  for (const deadline = Date.now() + timeoutMs; ; ) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const answers = (port) => fetch(`http://localhost:${port}/health`).then((r) => r.status === 200, () => false);

/** `npm run dev` on `port` with the test's state, once it serves. */
async function serve(port) {
  const dev = startDev(["--port", String(port), "--persist-to", state]);
  await until(`npm run dev on ${port}`, () => answers(port));
  return dev;
}

/** Ctrl-C, as a terminal sends it to the whole group. */
async function stop(dev) {
  dev.killGroup("SIGINT");
  const timer = setTimeout(() => dev.killGroup("SIGKILL"), 10_000);
  await dev.exited;
  await until("the group to end", () => dev.group().length === 0, 10_000);
  clearTimeout(timer);
}

it("refuses to start when 8787 is taken, naming the port and --port, instead of serving elsewhere", async (t) => {
  const holder = createServer();
  // Someone else may hold 8787 already: taken either way.
  await new Promise((resolve) => holder.once("error", resolve).listen(8787, "127.0.0.1", resolve));
  t.after(() => holder.close());
  const dev = startDev(["--persist-to", state]);
  t.after(() => dev.killGroup("SIGKILL"));
  const code = await Promise.race([dev.exited, new Promise((r) => setTimeout(() => r("still running"), 30_000))]);
  assert.equal(code, 1, dev.output());
  assert.match(dev.output(), /Port 8787 is already in use/);
  assert.match(dev.output(), /npm run dev -- --port 8788/);
  assert.doesNotMatch(dev.output(), /Applying D1 migrations|Ready on/);
});

it("stops wrangler and workerd when npm itself gets SIGTERM (kill <pid>, an IDE's stop button)", async (t) => {
  const port = await freePort();
  const dev = await serve(port);
  t.after(() => dev.killGroup("SIGKILL"));
  process.kill(dev.npm.pid, "SIGTERM");
  await until("every process of npm run dev to end", () => dev.group().length === 0, 15_000).catch(() => assert.fail(`still running:\n${dev.group().join("\n")}`));
  assert.equal(await answers(port), false);
});

describe("a restart on the same local state", () => {
  let port;
  let dev;
  const adminHeaders = () => ({ Authorization: `Bearer ${readDevVars(join(ROOT, ".dev.vars")).ADMIN_TOKEN}` });
  const api = (path, init = {}) => fetch(`http://localhost:${port}${path}`, init);
  const bramExport = async () => (await api("/v1/personalize/customers/cus_bram/export", { headers: { "X-API-Key": DEMO_SECRET_KEY } })).json();

  before(async () => {
    port = await freePort();
    dev = await serve(port);
    // The publishable key revoked, and seen revoked by the worker (which caches that in KV).
    assert.equal((await api("/v1/admin/keys/key_demo_publishable", { method: "DELETE", headers: adminHeaders() })).status, 204);
    assert.equal((await api("/v1/personalize/methods", { headers: { "X-API-Key": DEMO_PUBLISHABLE_KEY } })).status, 401);
    // cus_bram erased, and purged by the cron once the grace period is over.
    assert.equal((await api("/v1/personalize/customers/cus_bram", { method: "DELETE", headers: { "X-API-Key": DEMO_SECRET_KEY } })).status, 202);
    d1Query(state, "UPDATE customer_deletions SET purge_after = '2026-01-01T00:00:00.000Z' WHERE status = 'pending'");
    await api("/cdn-cgi/local/scheduled?cron=*/5+*+*+*+*");
    await until("cus_bram purged", async () => (await bramExport()).status === "purged", 15_000);
    assert.equal((await bramExport()).usage_events.length, 0);
    await stop(dev);
    dev = await serve(port);
  });
  after(() => stop(dev));

  it("re-activates the revoked demo key at once: the banner's keys work", async () => {
    assert.match(dev.output(), /Re-activated the revoked demo key\(s\) key_demo_publishable/);
    assert.match(dev.output(), new RegExp(`Publishable key ${DEMO_PUBLISHABLE_KEY}`));
    assert.equal((await api("/v1/personalize/methods", { headers: { "X-API-Key": DEMO_PUBLISHABLE_KEY } })).status, 200);
  });

  it("does not re-seed a purged demo customer's payments", async () => {
    assert.match(dev.output(), /Not seeding cus_bram: it has a purged deletion/);
    const exported = await bramExport();
    assert.equal(exported.status, "purged");
    assert.deepEqual(exported.usage_events, []);
  });
});
