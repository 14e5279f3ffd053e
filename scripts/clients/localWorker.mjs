// Starts this repository's worker with `wrangler dev` on a free port and a fresh, temporary state
// directory, for the client tests and for `npm run generate`. Nothing touches .wrangler/state.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Local-only secrets: the state directory is thrown away after the run. */
export const LOCAL_VARS = {
  ADMIN_TOKEN: "clients-test-admin-token",
  PII_KEY: "clients-test-pii-key-0123456789abcdef0123456789abcdef",
  SIGNING_KEY: "clients-test-signing-key-0123456789abcdef0123456789abcdef",
};

const BIN = join(REPO_ROOT, "node_modules", ".bin");
/** node_modules/.bin first, as npm scripts do: wrangler needs the project's Node 22 even when started with an older `node`. */
export const TOOL_ENV = { ...process.env, PATH: `${BIN}:${process.env.PATH ?? ""}` };
const WRANGLER = existsSync(join(BIN, "wrangler")) ? join(BIN, "wrangler") : "wrangler";
const WRANGLER_ENV = { ...TOOL_ENV, WRANGLER_SEND_METRICS: "false", CI: process.env.CI ?? "1" };

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts `wrangler dev` and resolves once GET /health answers 200.
 * @param {{ migrate?: boolean, vars?: Record<string, string>, readyTimeoutMs?: number }} options
 * @returns {Promise<{ baseUrl: string, persistTo: string, stop: () => Promise<void>, waitReady: (timeoutMs?: number) => Promise<void>, log: () => string }>}
 */
export async function startLocalWorker({ migrate = false, vars = LOCAL_VARS, readyTimeoutMs = 90_000 } = {}) {
  const persistTo = mkdtempSync(join(tmpdir(), "tap2-clients-state-"));
  if (migrate) {
    const res = spawnSync(WRANGLER, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistTo], {
      cwd: REPO_ROOT,
      env: WRANGLER_ENV,
      encoding: "utf8",
    });
    if (res.status !== 0) {
      rmSync(persistTo, { recursive: true, force: true });
      throw new Error(`wrangler d1 migrations apply failed (${res.status}):\n${res.stdout}${res.stderr}`);
    }
  }

  const port = await freePort();
  const inspectorPort = await freePort();
  const varArgs = Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]);
  const child = spawn(
    WRANGLER,
    ["dev", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspectorPort),
      "--persist-to", persistTo, "--show-interactive-dev-session=false", ...varArgs],
    // Its own process group, so stop() ends wrangler and the workerd it spawned together.
    { cwd: REPO_ROOT, env: WRANGLER_ENV, detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  const keep = (chunk) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  let exited = false;
  const exitPromise = new Promise((resolve) => child.on("exit", () => { exited = true; resolve(); }));

  const stop = async () => {
    if (!exited) {
      try { process.kill(-child.pid, "SIGTERM"); } catch { /* already gone */ }
      const killTimer = setTimeout(() => { try { process.kill(-child.pid, "SIGKILL"); } catch { /* gone */ } }, 5_000);
      await exitPromise;
      clearTimeout(killTimer);
    }
    rmSync(persistTo, { recursive: true, force: true });
  };

  const baseUrl = `http://127.0.0.1:${port}`;
  /** Resolves once GET /health answers 200 (again: wrangler dev restarts the worker when a source file changes). */
  const waitReady = async (timeoutMs = readyTimeoutMs) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`wrangler dev exited:\n${output}`);
      try {
        const res = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(2_000) });
        if (res.status === 200) return;
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(`wrangler dev was not ready within ${timeoutMs} ms:\n${output}`);
  };
  try {
    await waitReady();
  } catch (err) {
    await stop();
    throw err;
  }
  return { baseUrl, persistTo, stop, waitReady, log: () => output };
}
