import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";

describe("GET /health", () => {
  it("answers ok without a key", async () => {
    const res = await SELF.fetch("https://api.test/health");
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toMatch(/application\/json/);
    expect(res.headers.get("X-Request-Id")).toMatch(/^req_/);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  it("deep=1 checks D1 and KV", async () => {
    const res = await SELF.fetch("https://api.test/health?deep=1");
    expect(res.status).toBe(200);
    const body = await res.json<{ status: string; checks: Record<string, { ok: boolean }> }>();
    expect(body.status).toBe("ok");
    expect(body.checks.d1!.ok).toBe(true);
    expect(body.checks.kv!.ok).toBe(true);
  });
});

describe("deep health when a dependency hangs", () => {
  it("answers 503 naming D1 when its probe never settles (bounded like every storage call)", async () => {
    const { env, SELF } = await import("cloudflare:test");
    const { vi } = await import("vitest");
    const hang = vi.spyOn(env.DB, "prepare").mockImplementation(() => ({ first: () => new Promise(() => {}) }) as unknown as D1PreparedStatement);
    try {
      const res = await SELF.fetch("https://api.test/health?deep=1");
      expect(res.status).toBe(503);
      expect(await res.text()).toMatch(/d1/);
    } finally {
      hang.mockRestore();
    }
  });
});
