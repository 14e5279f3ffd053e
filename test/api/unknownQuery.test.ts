import { SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, createMerchant, type ErrorJson, recordedFetch, type TestMerchant } from "../helpers/fixtures";

/**
 * API.md §1: "unknown query parameters of a route are rejected (400)", on every route. Driven by the
 * worker's own OpenAPI document (as test/api/robustness.test.ts is), so a route added later is
 * covered without touching this file: each operation is sent once as a valid request (its required
 * query parameters, path parameters and documented body example) and once more with `?foo=1` added.
 * The first answer must not be a 400 (the request really is valid); the second must be exactly one
 * VALIDATION_ERROR naming `foo`. The answers are also checked against the document after the file
 * (test/helpers/setup.ts), so the 400 must be documented on every operation.
 */

interface Schema {
  $ref?: string;
  example?: unknown;
  enum?: unknown[];
  default?: unknown;
}
interface Parameter {
  name: string;
  in: "query" | "path" | "header";
  required?: boolean;
  example?: unknown;
  schema?: Schema;
}
interface DocOperation {
  parameters?: (Parameter | { $ref: string })[];
  requestBody?: { required?: boolean; content: Record<string, { schema: Schema }> };
  security?: Record<string, unknown>[];
}
interface OpenApiDoc {
  paths: Record<string, Record<string, DocOperation>>;
  components: Record<string, Record<string, unknown>>;
}
interface Operation {
  method: string;
  path: string;
  query: Record<string, string>;
  body: string | undefined;
  admin: boolean;
}

let merchant: TestMerchant;
let operations: Operation[] = [];

beforeAll(async () => {
  merchant = await createMerchant({ rate_limit: { requests_per_hour: 1_000_000, burst: 100_000 } });
  const res = await SELF.fetch("https://api.test/v1/openapi.json");
  expect(res.status).toBe(200);
  operations = listOperations((await res.json()) as OpenApiDoc);
});

function listOperations(doc: OpenApiDoc): Operation[] {
  const resolve = <T>(x: T | { $ref: string }): T => {
    if (typeof x === "object" && x !== null && "$ref" in x && typeof x.$ref === "string") {
      const [, , kind, name] = x.$ref.split("/");
      return doc.components[kind!]![name!] as T;
    }
    return x as T;
  };
  const out: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!["get", "post", "put", "patch", "delete"].includes(method)) continue;
      const query: Record<string, string> = {};
      for (const p of (op.parameters ?? []).map((x) => resolve<Parameter>(x))) {
        // customer_id is optional on /methods and /offers only for a browser with a checkout session; a secret key names the customer.
        if (p.in !== "query" || !(p.required || p.name === "customer_id")) continue;
        const schema = p.schema ? resolve<Schema>(p.schema) : {};
        query[p.name] = String(p.example ?? schema.example ?? schema.enum?.[0] ?? schema.default);
      }
      const bodySchema = op.requestBody?.content["application/json"]?.schema;
      const example = bodySchema ? resolve<Schema>(bodySchema).example : undefined;
      out.push({
        method: method.toUpperCase(),
        path,
        query,
        body: example === undefined ? undefined : JSON.stringify(example),
        admin: (op.security ?? []).some((s) => "AdminToken" in s),
      });
    }
  }
  return out;
}

/** A valid value for each path parameter (a resource that does not exist is a 404 after validation, which is fine). */
const concretePath = (path: string) =>
  path.replace("{merchant_id}", merchant.merchantId).replace("{key_id}", "key_doesnotexist").replace("{customer_id}", "cus_unknown_query").replace("{id}", "1");

function send(op: Operation, extra: Record<string, string>): Promise<Response> {
  const headers = new Headers({ "Content-Type": "application/json" });
  if (op.admin) headers.set("Authorization", `Bearer ${ADMIN_TOKEN}`);
  else headers.set("X-API-Key", merchant.secretKey);
  const query = new URLSearchParams({ ...op.query, ...extra }).toString();
  const init: RequestInit = { method: op.method, headers };
  if (op.body !== undefined) init.body = op.body;
  return recordedFetch(`${concretePath(op.path)}${query ? `?${query}` : ""}`, init);
}

const name = (op: Operation) => `${op.method} ${op.path}`;

describe("unknown query parameters are rejected on every documented operation", () => {
  it("the walk covers every route family, admin and self-description included", () => {
    const names = new Set(operations.map(name));
    for (const expected of [
      "PUT /v1/personalize/preferences",
      "POST /v1/admin/merchants",
      "GET /v1/admin/merchants/{merchant_id}",
      "PATCH /v1/admin/merchants/{merchant_id}",
      "POST /v1/admin/merchants/{merchant_id}/keys",
      "GET /v1/admin/merchants/{merchant_id}/keys",
      "DELETE /v1/admin/keys/{key_id}",
      "POST /v1/admin/dead-letters/redrive",
      "DELETE /v1/admin/dead-letters/{id}",
      "GET /v1/openapi.json",
      "GET /docs",
      "GET /health",
      "GET /v1/personalize/methods",
      "POST /v1/checkout/sessions",
      "GET /v1/analytics/timeseries",
    ]) {
      expect(names, expected).toContain(expected);
    }
    expect(operations.length).toBeGreaterThanOrEqual(25);
  });

  it("answers ?foo=1 with 400 VALIDATION_ERROR naming foo, where the same request without it is accepted", async () => {
    const problems: string[] = [];
    for (const op of operations) {
      const valid = await send(op, {});
      const validText = await valid.text();
      if (valid.status === 400 || valid.status >= 500) problems.push(`${name(op)} without foo → ${valid.status} ${validText.slice(0, 200)}`);

      const res = await send(op, { foo: "1" });
      const text = await res.text();
      let details: unknown;
      try {
        const body = JSON.parse(text) as ErrorJson;
        details = body.error.code === "VALIDATION_ERROR" ? body.error.details : body.error.code;
      } catch {
        details = text.slice(0, 200);
      }
      if (res.status !== 400 || JSON.stringify(details) !== JSON.stringify([{ path: "foo", message: "Unknown field" }])) {
        problems.push(`${name(op)}?foo=1 → ${res.status} ${JSON.stringify(details)}`);
      }
    }
    expect(problems).toEqual([]);
  });
});
