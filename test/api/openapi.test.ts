import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
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

  it("is cacheable, and the same document on every request (built once per isolate and origin)", async () => {
    const first = await SELF.fetch(`${BASE}/v1/openapi.json`);
    const second = await SELF.fetch(`${BASE}/v1/openapi.json`);
    expect(first.headers.get("Cache-Control")).toBe("public, max-age=300");
    expect(await second.text()).toBe(await first.text());
    const other = await (await SELF.fetch("https://staging.api.test/v1/openapi.json")).json<{ servers: { url: string }[] }>();
    expect(other.servers).toEqual([{ url: "https://staging.api.test" }]);
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
