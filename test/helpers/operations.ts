import { contractOf, type DocOperation } from "./contract";
import { ADMIN_TOKEN, type TestMerchant } from "./fixtures";

/**
 * The worker's own OpenAPI document as a list of callable operations, for tests that walk every
 * route (robustness.test.ts, unknownQuery.test.ts): a route added later is covered without editing them.
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
export interface Operation {
  method: string;
  path: string;
  parameters: Parameter[];
  /** A valid value for each query parameter a secret-key request needs. */
  requiredQuery: Record<string, string>;
  /** The documented request body example, if the operation has a JSON body. */
  example: Record<string, unknown> | null;
  /** The operation documents a request body (the others take none). */
  hasBody: boolean;
  admin: boolean;
}

/** Each operation of the document (contractOf: the one GET /v1/openapi.json serves), ready to call. */
export function documentedOperations(): Operation[] {
  const { doc, operations } = contractOf();
  const resolve = <T>(x: T | { $ref: string }): T => {
    if (typeof x === "object" && x !== null && "$ref" in x && typeof x.$ref === "string") {
      const [, , kind, name] = x.$ref.split("/");
      return doc.components[kind!]![name!] as T;
    }
    return x as T;
  };
  return operations.map((op) => {
    const { parameters: declared, requestBody } = op as DocOperation & { parameters?: (Parameter | { $ref: string })[]; requestBody?: { content: Record<string, { schema: Schema }> } };
    const parameters = (declared ?? []).map((p) => resolve<Parameter>(p));
    const requiredQuery: Record<string, string> = {};
    for (const p of parameters) {
      // customer_id is optional on /methods and /offers only for a browser with a checkout session; a secret key names the customer.
      if (p.in !== "query" || !(p.required || p.name === "customer_id")) continue;
      const schema = p.schema ? resolve<Schema>(p.schema) : {};
      requiredQuery[p.name] = String(p.example ?? schema.example ?? schema.enum?.[0] ?? schema.default);
    }
    const bodySchema = requestBody?.content["application/json"]?.schema;
    const example = bodySchema ? resolve<Schema>(bodySchema).example : undefined;
    return {
      method: op.method,
      path: op.path,
      parameters,
      requiredQuery,
      example: (example as Record<string, unknown> | undefined) ?? null,
      hasBody: bodySchema !== undefined,
      admin: (op.security ?? []).some((s) => "AdminToken" in s),
    };
  });
}

/** The path with a valid value in each path parameter (a resource that does not exist is a 404 after validation). */
export function concretePath(path: string, merchant: TestMerchant, customerId: string): string {
  return path.replace("{merchant_id}", merchant.merchantId).replace("{key_id}", "key_doesnotexist").replace("{customer_id}", customerId).replace("{id}", "1");
}

/** The credentials an operation takes: the admin token, or the merchant's secret key. */
export function credentials(op: Operation, merchant: TestMerchant): Record<string, string> {
  return op.admin ? { Authorization: `Bearer ${ADMIN_TOKEN}` } : { "X-API-Key": merchant.secretKey };
}
