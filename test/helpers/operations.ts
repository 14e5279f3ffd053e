import { SELF } from "cloudflare:test";
import { ADMIN_TOKEN, type TestMerchant } from "./fixtures";

/**
 * The worker's own OpenAPI document as a list of operations, for tests that walk every route
 * (robustness.test.ts, unknownQuery.test.ts): a route added later is covered without editing them.
 */

interface Schema {
  $ref?: string;
  example?: unknown;
  enum?: unknown[];
  default?: unknown;
}
export interface Parameter {
  name: string;
  in: "query" | "path" | "header";
  required?: boolean;
  example?: unknown;
  schema?: Schema;
}
interface DocOperation {
  parameters?: (Parameter | { $ref: string })[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  security?: Record<string, unknown>[];
}
interface OpenApiDoc {
  paths: Record<string, Record<string, DocOperation>>;
  components: Record<string, Record<string, unknown>>;
}

export interface Operation {
  method: string;
  path: string;
  parameters: Parameter[];
  /** A valid value for each query parameter a secret-key request needs. */
  requiredQuery: Record<string, string>;
  /** The documented request body example, if the operation has a JSON body. */
  example: Record<string, unknown> | null;
  admin: boolean;
}

export async function loadOperations(): Promise<Operation[]> {
  const res = await SELF.fetch("https://api.test/v1/openapi.json");
  if (res.status !== 200) throw new Error(`GET /v1/openapi.json: ${res.status}`);
  const doc = (await res.json()) as OpenApiDoc;
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
      const parameters = (op.parameters ?? []).map((p) => resolve<Parameter>(p));
      const requiredQuery: Record<string, string> = {};
      for (const p of parameters) {
        // customer_id is optional on /methods and /offers only for a browser with a checkout session; a secret key names the customer.
        if (p.in !== "query" || !(p.required || p.name === "customer_id")) continue;
        const schema = p.schema ? resolve<Schema>(p.schema) : {};
        requiredQuery[p.name] = String(p.example ?? schema.example ?? schema.enum?.[0] ?? schema.default);
      }
      const bodySchema = op.requestBody?.content["application/json"]?.schema;
      const example = bodySchema ? resolve<Schema>(bodySchema).example : undefined;
      out.push({
        method: method.toUpperCase(),
        path,
        parameters,
        requiredQuery,
        example: (example as Record<string, unknown> | undefined) ?? null,
        admin: (op.security ?? []).some((s) => "AdminToken" in s),
      });
    }
  }
  return out;
}

/** The path with a valid value in each path parameter (a resource that does not exist is a 404 after validation). */
export function concretePath(path: string, merchant: TestMerchant, customerId: string): string {
  return path.replace("{merchant_id}", merchant.merchantId).replace("{key_id}", "key_doesnotexist").replace("{customer_id}", customerId).replace("{id}", "1");
}

/** The credentials an operation takes: the admin token, or the merchant's secret key. */
export function credentials(op: Operation, merchant: TestMerchant): Record<string, string> {
  return op.admin ? { Authorization: `Bearer ${ADMIN_TOKEN}` } : { "X-API-Key": merchant.secretKey };
}
