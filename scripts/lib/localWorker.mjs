// This repository's worker under `wrangler dev` for local tools (bench, simulation, client tests and
// generation, browser test): a free loopback port, a throwaway `--persist-to` state, local-only
// secrets as `--var`, ready once GET /health answers 200. Children and temp dirs are cleaned up on
// stop, exit, Ctrl-C or SIGTERM (processes.mjs).
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, symlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, killGroup, removeTempDir, tempDir, trackChild } from "./processes.mjs";

export { freePort };

/** The repository: the nearest directory up from this file with a wrangler.toml (esbuild bundles it into node_modules/.cache/). */
export const ROOT = (() => {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, "wrangler.toml"))) return dir;
    if (dirname(dir) === dir) throw new Error(`no wrangler.toml above ${fileURLToPath(import.meta.url)}`);
  }
})();

const BIN = join(ROOT, "node_modules", ".bin");
/** node_modules/.bin first, as npm scripts do: wrangler needs the project's Node 22 even when started with an older `node`. */
export const TOOL_ENV = { ...process.env, PATH: `${BIN}:${process.env.PATH ?? ""}` };
const WRANGLER = existsSync(join(BIN, "wrangler")) ? join(BIN, "wrangler") : "wrangler";
// No colours: the worker's JSON log lines are parsed line by line.
const WRANGLER_ENV = { ...TOOL_ENV, WRANGLER_SEND_METRICS: "false", CI: "1", FORCE_COLOR: "0", NO_COLOR: "1" };

/**
 * Local-only secrets of one tool (its state directory is thrown away after the run). Each tool keeps
 * its own PII_KEY because customer pseudonyms, and so holdout arms, derive from it: a shared key
 * would change the simulation's numbers.
 */
export function localSecrets(tool) {
  return {
    ADMIN_TOKEN: `${tool}-admin-token-local-only`,
    PII_KEY: `${tool}-pii-key-0123456789abcdef0123456789abcdef`,
    SIGNING_KEY: `${tool}-signing-key-0123456789abcdef0123456789abcdef`,
  };
}

/** `wrangler …` to completion (from the repository, or a snapshot's copy); throws with its output when it fails. */
export function runWrangler(args, { snapshot = null, timeoutMs = 120_000 } = {}) {
  const res = spawnSync(WRANGLER, args, {
    cwd: snapshot?.dir ?? ROOT,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    timeout: timeoutMs,
    env: WRANGLER_ENV,
  });
  if (res.status !== 0) {
    throw new Error(`wrangler ${args.join(" ")} failed (${res.error?.message ?? `exit ${res.status}`}):\n${(res.stdout ?? "") + (res.stderr ?? "")}`.slice(0, 4000));
  }
  return res.stdout;
}

export function applyMigrations(persistDir, { snapshot = null } = {}) {
  runWrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistDir], { snapshot });
}

/** One SQL query against the local D1 (JSON rows of the first statement). */
export function d1Query(persistDir, sql, { snapshot = null } = {}) {
  const out = runWrangler(["d1", "execute", "DB", "--local", "--persist-to", persistDir, "--command", sql, "--json"], { snapshot });
  return JSON.parse(out.slice(out.indexOf("[")))[0]?.results ?? [];
}

/**
 * Copies what the worker is built from into a temp dir (removed on exit), for wrangler to run from.
 * `wrangler dev` rebuilds and restarts the worker whenever a watched file changes, which drops the
 * local queue backlog and mixes two versions into one run; a snapshot keeps edits made in the
 * working tree during a run out of it. `commit`/`dirty` say which code the snapshot holds.
 */
export function createSnapshot() {
  const dir = tempDir("tap2-worker-src-");
  for (const name of ["src", "public", "migrations", "wrangler.toml", "package.json", "tsconfig.json"]) {
    if (existsSync(join(ROOT, name))) cpSync(join(ROOT, name), join(dir, name), { recursive: true });
  }
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"), "dir");
  let commit = null;
  let dirty = null;
  try {
    const git = (...a) => execFileSync("git", a, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    commit = git("rev-parse", "--short", "HEAD");
    dirty = git("status", "--porcelain", "--", "src", "public", "migrations", "wrangler.toml").length > 0;
  } catch {
    /* not a git checkout */
  }
  return { dir, commit, dirty };
}

/**
 * Starts `wrangler dev` and resolves once GET /health answers 200.
 * - persistDir: an existing state dir the caller owns (and has migrated); without it a fresh temp dir
 *   is migrated, passed to `seed(persistDir)` if given, and removed on stop.
 * - snapshot: true for a snapshot of its own (removed on stop), or one from createSnapshot() to share.
 * - onLine sees every stdout/stderr line (the worker's JSON log lines among them); logs() gives the
 *   last lines, for error messages.
 * @returns {Promise<{ baseUrl: string, port: number, persistDir: string, logs: () => string, waitReady: (timeoutMs?: number) => Promise<void>, stop: () => Promise<void> }>}
 */
export async function startLocalWorker({ vars = {}, persistDir = null, seed = null, snapshot = false, testScheduled = false, onLine = () => {}, logLevel = "log", readyTimeoutMs = 90_000 } = {}) {
  const owned = [];
  const release = () => owned.forEach(removeTempDir);
  try {
    if (snapshot === true) owned.push((snapshot = createSnapshot()).dir);
    if (!persistDir) {
      owned.push((persistDir = tempDir("tap2-worker-state-")));
      applyMigrations(persistDir, { snapshot: snapshot || null });
      await seed?.(persistDir);
    }
    const opts = { vars, persistDir, snapshot: snapshot || null, testScheduled, onLine, logLevel, readyTimeoutMs };
    for (let attempt = 1; ; attempt++) {
      try {
        const worker = await startOnce(opts);
        return { ...worker, persistDir, stop: () => worker.stop().then(release) };
      } catch (err) {
        // Another process may take the free port between our check and workerd's bind: try new ports.
        if (attempt >= 3 || !/Address already in use/.test(String(err.message))) throw err;
        console.error(`port taken while starting wrangler dev; retrying with new ports (${attempt}/3)`);
      }
    }
  } catch (err) {
    release();
    throw err;
  }
}

async function startOnce({ vars, persistDir, snapshot, testScheduled, onLine, logLevel, readyTimeoutMs }) {
  const port = await freePort();
  const inspectorPort = await freePort();
  const args = ["dev", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspectorPort), "--persist-to", persistDir,
    "--show-interactive-dev-session=false", "--log-level", logLevel, ...(testScheduled ? ["--test-scheduled"] : [])];
  for (const [name, value] of Object.entries(vars)) args.push("--var", `${name}:${value}`);
  const child = spawn(WRANGLER, args, { cwd: snapshot?.dir ?? ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"], env: WRANGLER_ENV });
  trackChild(child);
  const tail = [];
  for (const stream of [child.stdout, child.stderr]) {
    let buf = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk) => {
      buf += chunk;
      for (let nl = buf.indexOf("\n"); nl !== -1; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        tail.push(line);
        if (tail.length > 80) tail.shift();
        onLine(line);
      }
    });
  }
  let exited = null;
  const exit = new Promise((resolve) => child.on("exit", (code, signal) => {
    exited = { code, signal };
    resolve();
  }));
  const logs = () => tail.join("\n");

  const stop = async () => {
    if (exited) return;
    killGroup(child, "SIGTERM");
    const timer = setTimeout(() => killGroup(child, "SIGKILL"), 5_000);
    await exit;
    clearTimeout(timer);
  };

  const baseUrl = `http://127.0.0.1:${port}`;
  /** Resolves once GET /health answers 200 (again, after wrangler dev restarted the worker for a changed source file). */
  const waitReady = async (timeoutMs = readyTimeoutMs) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (exited) throw new Error(`wrangler dev exited before it served (code ${exited.code}, signal ${exited.signal}). Last output:\n${logs()}`);
      try {
        const res = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(2_000) });
        if (res.status === 200) return;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) throw new Error(`wrangler dev did not answer GET ${baseUrl}/health within ${timeoutMs / 1000} s. Last output:\n${logs()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  try {
    await waitReady();
  } catch (err) {
    await stop();
    throw err;
  }
  return { baseUrl, port, logs, waitReady, stop };
}
