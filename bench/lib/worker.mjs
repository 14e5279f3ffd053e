// The worker under test: `wrangler dev` on a free loopback port over a throwaway --persist-to dir.
// Every child process started here is tracked and killed (by its process group id) on exit/error.
import { execSync, spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export const ROOT = new URL("../..", import.meta.url).pathname;
const WRANGLER = join(ROOT, "node_modules", ".bin", "wrangler");
const children = new Set();
let CWD = ROOT;

/**
 * Copies what the worker is built from (src/, public/, migrations/, configs) into a temp dir and runs
 * wrangler from there. `wrangler dev` rebuilds and restarts the worker whenever a watched file
 * changes, which drops the local queue backlog and mixes two versions into one run; a snapshot keeps
 * edits made in the working tree during the bench out of it. Returns the snapshot's description.
 */
export function useSnapshot() {
  const dir = mkdtempSync(join(tmpdir(), "tap2-bench-src-"));
  for (const name of ["src", "public", "migrations", "wrangler.toml", "package.json", "tsconfig.json"]) {
    if (existsSync(join(ROOT, name))) cpSync(join(ROOT, name), join(dir, name), { recursive: true });
  }
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"), "dir");
  CWD = dir;
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  let commit = null;
  let dirty = null;
  try {
    commit = execSync("git rev-parse --short HEAD", { cwd: ROOT, encoding: "utf8" }).trim();
    dirty = execSync("git status --porcelain -- src public migrations wrangler.toml", { cwd: ROOT, encoding: "utf8" }).trim().length > 0;
  } catch {
    /* not a git checkout */
  }
  return { dir, commit, dirty };
}

function killTree(child, signal = "SIGTERM") {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // the child's own process group (spawned detached)
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

export function killAll() {
  for (const child of children) killTree(child, "SIGKILL");
  children.clear();
}

process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** `wrangler …` to completion; throws with its output when it fails. */
export function wranglerSync(args, { timeoutMs = 120_000 } = {}) {
  const res = spawnSync(WRANGLER, args, {
    cwd: CWD,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    timeout: timeoutMs,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1" },
  });
  if (res.status !== 0) {
    throw new Error(`wrangler ${args.join(" ")} failed (${res.error?.message ?? `exit ${res.status}`}):\n${(res.stdout ?? "") + (res.stderr ?? "")}`.slice(0, 4000));
  }
  return res.stdout;
}

export function applyMigrations(persistDir) {
  wranglerSync(["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistDir]);
}

/** One SQL query against the local D1 (JSON rows of the first statement). */
export function d1Query(persistDir, sql) {
  const out = wranglerSync(["d1", "execute", "DB", "--local", "--persist-to", persistDir, "--command", sql, "--json"]);
  const start = out.indexOf("[");
  const parsed = JSON.parse(out.slice(start));
  return parsed[0]?.results ?? [];
}

/**
 * Starts `wrangler dev` and resolves once GET /health answers 200. `onLine` sees every stdout/stderr
 * line (the worker's JSON request log lines among them). Fails clearly when the port never comes up
 * or wrangler exits early.
 */
export async function startWorker(opts) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      // Another process may take the free port between our check and workerd's bind: try new ports.
      if (attempt >= 3 || !/Address already in use/.test(String(err.message))) throw err;
      console.error(`[bench] port taken while starting wrangler dev; retrying with new ports (${attempt}/3)`);
    }
  }
}

async function startOnce({ persistDir, vars = {}, onLine = () => {}, readyTimeoutMs = 90_000 }) {
  const port = await freePort();
  const inspectorPort = await freePort();
  const args = ["dev", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspectorPort), "--persist-to", persistDir, "--show-interactive-dev-session=false", "--log-level", process.env.BENCH_WRANGLER_LOG_LEVEL ?? "log"];
  for (const [name, value] of Object.entries(vars)) args.push("--var", `${name}:${value}`);
  const child = spawn(WRANGLER, args, {
    cwd: CWD,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1", FORCE_COLOR: "0", NO_COLOR: "1" },
  });
  children.add(child);
  const tail = [];
  const feed = (stream) => {
    let buf = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        tail.push(line);
        if (tail.length > 60) tail.shift();
        onLine(line);
      }
    });
  };
  feed(child.stdout);
  feed(child.stderr);
  let exited = null;
  child.on("exit", (code, signal) => {
    exited = { code, signal };
    children.delete(child);
  });

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (exited) throw new Error(`wrangler dev exited before it served (code ${exited.code}, signal ${exited.signal}). Last output:\n${tail.join("\n")}`);
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
      if (res.status === 200) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      killTree(child, "SIGKILL");
      throw new Error(`wrangler dev did not answer GET ${url}/health within ${readyTimeoutMs / 1000} s. Last output:\n${tail.join("\n")}`);
    }
    await sleep(250);
  }

  return {
    url,
    port,
    async stop() {
      if (exited) return;
      const done = new Promise((resolve) => child.once("exit", resolve));
      killTree(child, "SIGTERM");
      const forced = sleep(5_000).then(() => killTree(child, "SIGKILL"));
      await Promise.race([done, forced.then(() => done)]);
      children.delete(child);
    },
  };
}
