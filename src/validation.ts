import { type Hook, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { ZodError } from "zod";
import type { AppEnv } from "./env";
import { type ErrorDetail, validationError } from "./errors";

/** zod issues → the contract's `details` ([{path, message}]), unknown fields named one by one. */
export function zodDetails(error: ZodError, input?: unknown): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  for (const issue of error.issues) {
    const base = issue.path.map(String);
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) out.push({ path: [...base, key].join("."), message: "Unknown field" });
      continue;
    }
    const missing = /received undefined$/.test(issue.message) || (input !== undefined && valueAt(input, issue.path) === undefined && issue.code !== "custom");
    const message = missing ? "Required" : issue.message;
    out.push({ path: base.join("."), message });
  }
  return out;
}

function valueAt(input: unknown, path: PropertyKey[]): unknown {
  let cur = input;
  for (const key of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

/**
 * A query parameter with an empty name (`?=x`, `?a=1&=x`, `?=`) as a detail, or none. Hono's query
 * parser drops such a parameter before a route's strict query schema sees it, so it slipped through
 * where `?foo=1` is a 400 (API.md §1: unknown query parameters are rejected). An empty segment
 * (`?&`, a trailing `&`) names no parameter at all and is accepted, as URLSearchParams reads it.
 */
export function namelessQueryParam(url: string): ErrorDetail[] {
  const q = url.indexOf("?");
  if (q === -1) return [];
  const hash = url.indexOf("#", q);
  const query = url.slice(q + 1, hash === -1 ? undefined : hash);
  return /(?:^|&)=/.test(query) ? [{ path: "", message: "Query parameter without a name" }] : [];
}

/**
 * Every route's validator failure becomes one VALIDATION_ERROR through onError. Every route declares
 * its query (strict), so the query check here covers every route.
 */
export const validationHook: Hook<unknown, AppEnv, string, unknown> = (result, c) => {
  const details = result.success ? [] : zodDetails(result.error as ZodError, (result as { data?: unknown }).data);
  if (result.target === "query") details.push(...namelessQueryParam(c.req.url));
  if (details.length > 0) throw validationError(details);
};

/**
 * For a route that takes no body (a DELETE, a restore): unknown body fields are rejected there too
 * (API.md §1), so `{"merchnt_id": …}` is a 400, not silently ignored. Allowed: no body, `{}`, or the
 * fields of `schema` (merchant routes: `merchant_id`, which may come in query or body). bodyLimits
 * has made the body JSON (`{}` when there was none) before this runs.
 */
export function noBody(schema: z.ZodType = z.strictObject({})): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const body: unknown = await c.req.json();
    const result = schema.safeParse(body);
    if (!result.success) throw validationError(zodDetails(result.error, body));
    await next();
  };
}
