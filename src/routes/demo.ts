import { z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { randomToken } from "../crypto/hash";
import type { App, AppEnv } from "../env";
import { ApiError, validationError } from "../errors";
import { noRouteMessage } from "../middleware/routing";
import { CustomerId, MethodId } from "../schemas/common";
import { zodDetails } from "../validation";

/**
 * The demo shop's "backend" behind public/demo/ (`npm run dev` only): it holds the demo merchant's
 * secret key, the way a merchant's server does, and talks to the API through the app itself, so the
 * demo exercises the real routes (auth, rate limits, sessions, the feedback queue).
 * Outside ENVIRONMENT=development every /demo path answers 404, as if it did not exist; staging and
 * production also route /demo/* to the worker before the static assets (run_worker_first).
 */
export const DEMO_MERCHANT_ID = "m_demo";
/** The local-only keys seeded by scripts/demo-data.mjs (never present in staging or production). */
export const DEMO_SECRET_KEY = "tp2_sk_demo_secret_key_for_local_development_only0";
export const DEMO_PUBLISHABLE_KEY = "tp2_pk_demo_publishable_key_for_local_development0";
/** The demo checkout's basket (public/demo/customers.json shows the same). */
export const DEMO_BASKET = { amount: 6490, currency: "EUR", country: "NL" } as const;

const SessionBody = z.strictObject({ customer: CustomerId });
const PayBody = z.strictObject({ customer: CustomerId, method_id: MethodId, decision_id: z.string().min(1).max(2048).optional() });

type Ctx = Context<AppEnv>;

async function parse<T extends z.ZodType>(c: Ctx, schema: T): Promise<z.infer<T>> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new ApiError("INVALID_JSON", "The body is not valid JSON");
  }
  const result = schema.safeParse(body);
  if (!result.success) throw validationError(zodDetails(result.error, body));
  return result.data;
}

/**
 * A merchant-backend call to the API, made through the app (same middleware and routes). It carries
 * the demo request's id, so a relayed error names the id of the answer the page gets (API.md §1).
 */
function callApi(app: App, c: Ctx, path: string, body: unknown): Promise<Response> {
  const url = new URL(path, c.req.url);
  const headers = { "Content-Type": "application/json", "X-API-Key": DEMO_SECRET_KEY, "X-Request-Id": c.get("requestId") };
  const req = new Request(url, { method: "POST", headers, body: JSON.stringify(body) });
  return Promise.resolve(app.fetch(req, c.env, c.executionCtx));
}

/** Headers of an API error that tell a client what to do; they go through with it. */
const RELAYED_HEADERS = ["Content-Type", "Retry-After", "WWW-Authenticate"];

/** Passes an API error through unchanged, so the demo page shows what the API said. */
function relay(res: Response): Response {
  const headers = new Headers({ "Content-Type": "application/json" });
  for (const name of RELAYED_HEADERS) {
    const value = res.headers.get(name);
    if (value !== null) headers.set(name, value);
  }
  return new Response(res.body, { status: res.status, headers });
}

/**
 * Outside development no /demo path exists: a plain 404 for every method and body, before the
 * router could answer 405 or a body check 400 (app.ts puts it ahead of both).
 */
export function demoOnlyInDevelopment(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (c.env.ENVIRONMENT !== "development") throw new ApiError("NOT_FOUND", noRouteMessage(c));
    return next();
  };
}

export function registerDemoRoutes(app: App): void {
  app.post("/demo/api/session", async (c) => {
    const { customer } = await parse(c, SessionBody);
    const res = await callApi(app, c, "/v1/checkout/sessions", { customer_id: customer, ...DEMO_BASKET, expires_in: 900 });
    if (res.status !== 201) return relay(res);
    const session = (await res.json()) as { client_secret: string; amount: number; currency: string; expires_at: string };
    return c.json(
      {
        merchant_id: DEMO_MERCHANT_ID,
        publishable_key: DEMO_PUBLISHABLE_KEY,
        client_secret: session.client_secret,
        amount: session.amount,
        currency: session.currency,
        expires_at: session.expires_at,
        api_base: new URL(c.req.url).origin,
      },
      201,
    );
  });

  app.post("/demo/api/pay", async (c) => {
    const { customer, method_id, decision_id } = await parse(c, PayBody);
    const res = await callApi(app, c, "/v1/personalize/feedback", {
      customer_id: customer,
      method_id,
      ...(decision_id ? { decision_id } : {}),
      amount: DEMO_BASKET.amount,
      currency: DEMO_BASKET.currency,
      location_country: DEMO_BASKET.country,
      event_id: `demo_pay_${randomToken(12)}`,
    });
    if (res.status !== 204) return relay(res);
    return c.json({ paid: true, method_id }, 200);
  });
}
