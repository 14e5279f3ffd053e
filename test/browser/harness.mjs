// Test harness of the browser test: a fresh `wrangler dev` with the demo data, a foreign-origin
// static server, and Debian's Chromium driven by playwright-core. Runs in node, not in workerd.
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";
import { chromium } from "playwright-core";
import { ensureDevVars, readDevVars, seedDemoData } from "../../scripts/local-setup.mjs";
import { freePort, startLocalWorker } from "../../scripts/lib/localWorker.mjs";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** `wrangler dev` on a free port with fresh local state, migrated and seeded like `npm run dev` (with .dev.vars' secrets). */
export async function startWorker() {
  ensureDevVars();
  const vars = readDevVars();
  const worker = await startLocalWorker({ vars, seed: (dir) => seedDemoData(["--persist-to", dir]), logLevel: "warn" });
  return { port: worker.port, base: worker.baseUrl, adminToken: vars.ADMIN_TOKEN, stop: worker.stop };
}

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".json": "application/json" };

/**
 * The demo page served from another origin, the way a shop that is not in the merchant's
 * allowed_origins would serve it: static files of public/, /demo/api/* proxied to the worker
 * (server to server), /hang, which never answers (for the timeout test), and /echo?html=…, a page
 * of the test's own making served from a real loopback address (a page Playwright fulfils itself
 * counts as a public one, which Chromium's local network access rules keep from calling loopback).
 */
export async function startForeignServer(publicDir, workerBase) {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://x");
    if (url.pathname.startsWith("/hang")) return; // never answers
    if (url.pathname === "/echo") {
      res.writeHead(200, { "Content-Type": TYPES[".html"] });
      return res.end(url.searchParams.get("html") ?? "");
    }
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
