import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { LATEST_MIGRATION } from "../../src/storage/schema";

describe("GET /health", () => {
  it("answers ok without a key", async () => {
    const res = await SELF.fetch("https://api.test/health");
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toMatch(/application\/json/);
    expect(res.headers.get("X-Request-Id")).toMatch(/^req_/);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  it("deep=1 checks D1, KV, the schema and the secrets", async () => {
    const res = await SELF.fetch("https://api.test/health?deep=1");
    expect(res.status).toBe(200);
    const body = await res.json<{ status: string; checks: Record<string, { ok: boolean }> }>();
    expect(body.status).toBe("ok");
    expect(Object.keys(body.checks).sort()).toEqual(["d1", "kv", "schema", "secrets"]);
    for (const check of Object.values(body.checks)) expect(check.ok).toBe(true);
  });
});

describe("deep health after the likeliest deploy mistakes (D1 and KV up)", () => {
  const deep = async (testEnv: typeof env) => {
    const ctx = createExecutionContext();
    const res = await worker.fetch(new Request("https://api.test/health?deep=1"), testEnv, ctx);
    await waitOnExecutionContext(ctx);
    return res;
  };

  it("the code's newest migration is the last file in migrations/", () => {
    expect(LATEST_MIGRATION).toBe(env.TEST_MIGRATIONS.at(-1)!.name);
  });

  it("503 naming the schema while the newest migration is not applied", async () => {
    const row = await env.DB.prepare("SELECT id, name, applied_at FROM d1_migrations WHERE name = ?").bind(LATEST_MIGRATION).first<{ id: number; name: string; applied_at: string }>();
    expect(row).not.toBeNull();
    await env.DB.prepare("DELETE FROM d1_migrations WHERE id = ?").bind(row!.id).run();
    try {
      const res = await deep(env);
      expect(res.status).toBe(503);
      const body = await res.json<{ error: { code: string; message: string } }>();
      expect(body.error).toMatchObject({ code: "UNAVAILABLE", message: "Health check failed: schema not ready" });
    } finally {
      await env.DB.prepare("INSERT INTO d1_migrations (id, name, applied_at) VALUES (?, ?, ?)").bind(row!.id, row!.name, row!.applied_at).run();
    }
    expect((await deep(env)).status).toBe(200);
  });

  it("503 naming the secrets when PII_KEY or SIGNING_KEY is not set", async () => {
    for (const missing of ["PII_KEY", "SIGNING_KEY"] as const) {
      const res = await deep({ ...env, [missing]: "" });
      expect(res.status).toBe(503);
      expect((await res.json<{ error: { message: string } }>()).error.message).toBe("Health check failed: secrets not ready");
    }
  });

  it("each failing check writes an error line naming the check, tied to the request by its id", async () => {
    const { vi } = await import("vitest");
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const res = await deep({ ...env, SIGNING_KEY: "" });
      await res.arrayBuffer();
      expect(res.status).toBe(503);
      const lines = errors.mock.calls.map(([l]) => JSON.parse(String(l)) as Record<string, unknown>).filter((l) => l.message === "health check failed");
      expect(lines.map((l) => [l.check, l.request_id])).toEqual([["secrets", res.headers.get("X-Request-Id")]]);
    } finally {
      errors.mockRestore();
    }
  });
});

describe("deep health when a dependency hangs", () => {
  it("answers 503 naming D1 when its probe never settles (bounded like every storage call)", async () => {
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
