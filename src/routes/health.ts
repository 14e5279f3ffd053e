import { createRoute, z } from "@hono/zod-openapi";
import type { App } from "../env";
import { ApiError } from "../errors";
import { errorText, logEvent } from "../log";
import { errorResponses, KeylessQuery } from "../schemas/common";
import { schemaIsCurrent } from "../storage/schema";
import { withTimeout } from "../storage/timeout";

const HealthQuery = KeylessQuery.extend({ deep: z.enum(["0", "1", "true", "false"]).optional() });
const Health = z
  .object({
    status: z.enum(["ok"]),
    checks: z.record(z.string(), z.object({ ok: z.boolean(), latency_ms: z.number() })).optional(),
  })
  .openapi("Health", { example: { status: "ok" } });

const route = createRoute({
  method: "get",
  path: "/health",
  operationId: "getHealth",
  security: [],
  tags: ["Health"],
  summary: "Liveness; with deep=1 also checks D1, KV, the D1 schema (migrations applied) and the secrets",
  request: { query: HealthQuery },
  responses: {
    200: { description: "Healthy", content: { "application/json": { schema: Health } } },
    ...errorResponses(400, 503),
  },
});

/** A probe passes when it settles without throwing and, when it answers a boolean, answers true. */
async function check(requestId: string, name: string, fn: () => Promise<unknown>) {
  const started = Date.now();
  try {
    if ((await fn()) === false) throw new Error("check answered false");
    return { ok: true, latency_ms: Date.now() - started };
  } catch (err) {
    // The cause goes to the log, never into the body (API.md §1: no internals in an error).
    logEvent("health check failed", { request_id: requestId, check: name, error: errorText(err).slice(0, 200) });
    return { ok: false, latency_ms: Date.now() - started };
  }
}

export function registerHealthRoutes(app: App) {
  app.openapi(route, async (c) => {
    const { deep } = c.req.valid("query");
    if (deep !== "1" && deep !== "true") return c.json({ status: "ok" as const }, 200);
    const probe = (name: string, fn: () => Promise<unknown>) => check(c.get("requestId"), name, fn);
    const [d1, kv, schema, secrets] = await Promise.all([
      // A dependency that hangs is as down as one that fails: each probe is bounded like every storage call.
      probe("d1", () => withTimeout(c.env.DB.prepare("SELECT 1").first(), "D1 health probe")),
      probe("kv", () => withTimeout(c.env.CACHE.get("health:probe"), "KV health probe")),
      // The two likeliest deploy mistakes, which leave D1 and KV up and every customer route failing:
      // migrations not applied, and the secrets not put.
      probe("schema", () => withTimeout(schemaIsCurrent(c.env.DB), "D1 schema probe")),
      probe("secrets", async () => Boolean(c.env.PII_KEY) && Boolean(c.env.SIGNING_KEY)),
    ]);
    const checks = { d1, kv, schema, secrets };
    const failing = Object.entries(checks).filter(([, r]) => !r.ok).map(([name]) => name);
    // A failure answers in the contract's one error body, the failing part named in the message.
    if (failing.length > 0) throw new ApiError("UNAVAILABLE", `Health check failed: ${failing.join(", ")} not ready`);
    return c.json({ status: "ok" as const, checks }, 200);
  });
}
