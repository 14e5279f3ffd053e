import { createRoute, z } from "@hono/zod-openapi";
import type { App } from "../env";
import { errorResponses } from "../schemas/common";

const HealthQuery = z.strictObject({ deep: z.enum(["0", "1", "true", "false"]).optional() });
const Health = z
  .object({
    status: z.enum(["ok", "degraded"]),
    checks: z.record(z.string(), z.object({ ok: z.boolean(), latency_ms: z.number(), error: z.string().optional() })).optional(),
  })
  .openapi("Health", { example: { status: "ok" } });

const route = createRoute({
  method: "get",
  path: "/health",
  operationId: "getHealth",
  security: [],
  tags: ["Health"],
  summary: "Liveness; with deep=1 also checks D1 and KV",
  request: { query: HealthQuery },
  responses: {
    200: { description: "Healthy", content: { "application/json": { schema: Health } } },
    ...errorResponses(400),
    503: { description: "A dependency failed (named in checks)", content: { "application/json": { schema: Health } } },
  },
});

async function check(fn: () => Promise<unknown>) {
  const started = Date.now();
  try {
    await fn();
    return { ok: true, latency_ms: Date.now() - started };
  } catch (err) {
    return { ok: false, latency_ms: Date.now() - started, error: err instanceof Error ? err.message.slice(0, 200) : "failed" };
  }
}

export function registerHealthRoutes(app: App) {
  app.openapi(route, async (c) => {
    const { deep } = c.req.valid("query");
    if (deep !== "1" && deep !== "true") return c.json({ status: "ok" as const }, 200);
    const [d1, kv] = await Promise.all([
      check(() => c.env.DB.prepare("SELECT 1").first()),
      check(() => c.env.CACHE.get("health:probe")),
    ]);
    const ok = d1.ok && kv.ok;
    return c.json({ status: ok ? ("ok" as const) : ("degraded" as const), checks: { d1, kv } }, ok ? 200 : 503);
  });
}
