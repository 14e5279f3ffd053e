import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BASE } from "../helpers/fixtures";
import manifest from "../../public/sdk/integrity.json";

/**
 * public/ is served by Workers static assets before the worker runs (no run_worker_first for these
 * paths: a worker invocation on every load of the checkout's script would be billed and add latency
 * for an id no log line of ours records), so public/_headers is where their headers come from. Read
 * through the real ASSETS binding, which applies that file as the asset router does.
 */
const FILES = ["/sdk/v1/tap2.js", manifest.latest, "/sdk/integrity.json", "/demo/", "/demo/index.html", "/demo/demo.js", "/demo/demo.css", "/demo/customers.json"];

describe("static files (public/)", () => {
  it("every one is served nosniff, like the worker's own answers, with the header sent once", async () => {
    for (const path of FILES) {
      const res = await env.ASSETS.fetch(`${BASE}${path}`);
      await res.arrayBuffer();
      expect(`${path} ${res.status}`).toBe(`${path} 200`);
      expect(res.headers.get("X-Content-Type-Options"), path).toBe("nosniff");
    }
  });

  it("publishes nothing but those files: no placeholder or config file of the repository", async () => {
    for (const path of ["/.gitkeep", "/_headers", "/.assetsignore"]) {
      const res = await env.ASSETS.fetch(`${BASE}${path}`);
      await res.arrayBuffer();
      expect(`${path} ${res.status}`).toBe(`${path} 404`);
    }
  });

  it("the drop-in script keeps its own policy: cached for a week, loadable from any origin", async () => {
    const res = await env.ASSETS.fetch(`${BASE}/sdk/v1/tap2.js`);
    await res.arrayBuffer();
    expect(res.headers.get("Cache-Control")).toBe("public, max-age=604800, stale-while-revalidate=604800");
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("*");
    expect(res.headers.get("Cross-Origin-Resource-Policy")).toBe("cross-origin");
    expect(res.headers.get("Content-Type")).toMatch(/^text\/javascript/);
  });

  it("a pinned release is immutable and served as its integrity hash says, for every release integrity.json lists", async () => {
    expect(Object.keys(manifest.releases)).toContain(manifest.latest);
    for (const [path, integrity] of Object.entries(manifest.releases)) {
      const res = await env.ASSETS.fetch(`${BASE}${path}`);
      const digest = await crypto.subtle.digest("SHA-384", await res.arrayBuffer());
      expect(`${path} ${res.status}`).toBe(`${path} 200`);
      expect(`sha384-${btoa(String.fromCharCode(...new Uint8Array(digest)))}`, path).toBe(integrity);
      expect(res.headers.get("Cache-Control"), path).toBe("public, max-age=31536000, immutable");
      expect(res.headers.get("Access-Control-Allow-Origin"), path).toBe("*");
      expect(res.headers.get("Content-Type"), path).toMatch(/^text\/javascript/);
    }
    const list = await env.ASSETS.fetch(`${BASE}/sdk/integrity.json`);
    expect(await list.json()).toEqual(manifest);
    expect(list.headers.get("Cache-Control")).toBe("public, max-age=300");
  });
});
