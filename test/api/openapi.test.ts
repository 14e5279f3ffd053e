import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { SCALAR_BUNDLE } from "../../src/routes/openapi";
import { BASE } from "../helpers/fixtures";

interface OpenApiDoc {
  openapi: string;
  paths: Record<string, Record<string, { responses: Record<string, unknown>; security?: unknown[] }>>;
  components: { securitySchemes: Record<string, unknown>; schemas: Record<string, unknown> };
}

describe("GET /v1/openapi.json", () => {
  it("serves an OpenAPI 3.1 document without a key", async () => {
    const res = await SELF.fetch(`${BASE}/v1/openapi.json`);
    expect(res.status).toBe(200);
    const doc = await res.json<OpenApiDoc>();
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(["AdminToken", "ApiKeyHeader", "ApiKeyQuery", "BearerKey"]);
    expect(doc.paths["/health"]?.get).toBeDefined();
    expect(doc.paths["/v1/admin/merchants"]?.post?.responses["409"]).toBeDefined();
    expect(doc.paths["/v1/admin/merchants/{merchant_id}"]?.patch).toBeDefined();
    expect(doc.components.schemas.Error).toBeDefined();
  });

  it("is cacheable, and the same document on every request (built once per isolate and server URL)", async () => {
    const first = await SELF.fetch(`${BASE}/v1/openapi.json`);
    const second = await SELF.fetch(`${BASE}/v1/openapi.json`);
    expect(first.headers.get("Cache-Control")).toBe("public, max-age=300");
    expect(await second.text()).toBe(await first.text());
  });
});

describe("the document's servers URL", () => {
  const serversOf = async (res: Response | Promise<Response>) => (await (await res).json<{ servers: { url: string }[] }>()).servers;
  /** The worker with wrangler vars as a deployed environment has them (the test config is development's). */
  const deployed = async (url: string, PUBLIC_BASE_URL: string) => {
    const ctx = createExecutionContext();
    const res = await createApp().fetch(new Request(url), { ...env, PUBLIC_BASE_URL }, ctx);
    await waitOnExecutionContext(ctx);
    return res;
  };

  it("is PUBLIC_BASE_URL when configured, whatever Host the request names (loopback included)", async () => {
    for (const url of ["https://evil.example/v1/openapi.json", "https://api-staging.tap2-personalize.com/v1/openapi.json", "http://localhost:8787/v1/openapi.json"]) {
      expect(await serversOf(deployed(url, "https://api.tap2-personalize.com")), url).toEqual([{ url: "https://api.tap2-personalize.com" }]);
    }
  });

  it("without it (development), never a host the request made up: the relative \"/\" unless the host is loopback", async () => {
    expect(env.PUBLIC_BASE_URL).toBe(""); // wrangler.toml
    for (const url of ["https://evil.example", BASE, "http://localhost.evil.example", "http://127.0.0.1.evil.example", "http://10.0.0.1:8787"]) {
      expect(await serversOf(SELF.fetch(`${url}/v1/openapi.json`)), url).toEqual([{ url: "/" }]);
    }
    // A Host header, however sent, is the URL's host here: the same rule applies.
    expect(await serversOf(SELF.fetch(`${BASE}/v1/openapi.json`, { headers: { Host: "evil.example" } }))).toEqual([{ url: "/" }]);
    // Loopback (npm run dev on any port, the local tools): that origin, so "Try it" and a generated client reach it.
    for (const origin of ["http://localhost:8787", "http://localhost:8795", "http://127.0.0.1:41234", "http://[::1]:8787", "http://tap2.localhost"]) {
      expect(await serversOf(SELF.fetch(`${origin}/v1/openapi.json`)), origin).toEqual([{ url: origin }]);
    }
  });
});

describe("GET /docs", () => {
  it("renders the API reference page over the document", async () => {
    const res = await SELF.fetch(`${BASE}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toContain("/v1/openapi.json");
    // The page's script is a pinned release, not the CDN's moving "latest".
    expect(html).toContain(`from '${SCALAR_BUNDLE}'`);
    expect(SCALAR_BUNDLE).toMatch(/@\d+\.\d+\.\d+\/esm\.js$/);
  });
});
