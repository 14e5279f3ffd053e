// Test harness of the browser test: a fresh `wrangler dev` with the demo data, a foreign-origin
// static server, and Debian's Chromium driven by playwright-core. Runs in node, not in workerd.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { chromium } from "playwright-core";
import { ensureDevVars, prepareLocalDatabase, readDevVars } from "../../scripts/local-setup.mjs";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitForHealth(base, child, timeoutMs) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${base}/health`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`wrangler dev did not answer ${base}/health within ${timeoutMs} ms`);
}

/** `wrangler dev` on a free port with fresh local state, migrated and seeded like `npm run dev`. */
export async function startWorker() {
  ensureDevVars();
  const vars = readDevVars();
  const persistTo = mkdtempSync(join(tmpdir(), "tap2-browser-"));
  await prepareLocalDatabase(["--persist-to", persistTo], () => {});
  const port = await freePort();
  const inspectorPort = await freePort();
  const logs = [];
  const child = spawn(
    "wrangler",
    ["dev", "--port", String(port), "--ip", "127.0.0.1", "--inspector-port", String(inspectorPort), "--persist-to", persistTo, "--show-interactive-dev-session=false", "--log-level", "warn"],
    { stdio: ["ignore", "pipe", "pipe"], env: { WRANGLER_SEND_METRICS: "false", ...process.env }, detached: true },
  );
  child.stdout.on("data", (d) => logs.push(String(d)));
  child.stderr.on("data", (d) => logs.push(String(d)));
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitForHealth(base, child, 90_000);
  } catch (err) {
    stopProcessGroup(child);
    throw new Error(`${err.message}\n${logs.join("").slice(-4000)}`, { cause: err });
  }
  return {
    port,
    base,
    adminToken: vars.ADMIN_TOKEN,
    logs,
    async stop() {
      stopProcessGroup(child);
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
      rmSync(persistTo, { recursive: true, force: true });
    },
  };
}

/** wrangler starts workerd as a child: end the whole group this test started (by its id). */
function stopProcessGroup(child) {
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {
    // already gone
  }
}

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".json": "application/json" };

/**
 * The demo page served from another origin, the way a shop that is not in the merchant's
 * allowed_origins would serve it: static files of public/, /demo/api/* proxied to the worker
 * (server to server), and /hang, which never answers (for the timeout test).
 */
export async function startForeignServer(publicDir, workerBase) {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://x");
    if (url.pathname.startsWith("/hang")) return; // never answers
    if (url.pathname.startsWith("/demo/api/")) {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const upstream = await fetch(workerBase + url.pathname, { method: req.method, headers: { "Content-Type": "application/json" }, body: Buffer.concat(chunks) });
      res.writeHead(upstream.status, { "Content-Type": upstream.headers.get("Content-Type") ?? "application/json" });
      return res.end(Buffer.from(await upstream.arrayBuffer()));
    }
    let path = normalize(url.pathname).replace(/^(\.\.[/\\])+/, "");
    if (path.endsWith("/")) path += "index.html";
    const file = join(publicDir, path);
    if (!file.startsWith(publicDir) || !existsSync(file)) {
      res.writeHead(404);
      return res.end("not found");
    }
    res.writeHead(200, { "Content-Type": TYPES[extname(file)] ?? "application/octet-stream" });
    res.end(readFileSync(file));
  });
  const port = await freePort();
  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  return {
    origin: `http://127.0.0.1:${port}`,
    stop: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}

export function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--host-resolver-rules=MAP localhost 127.0.0.1"],
  });
}
