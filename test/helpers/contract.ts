import type { z } from "@hono/zod-openapi";
import { createApp } from "../../src/app";
import { openApiDocument } from "../../src/routes/openapi";
import { ErrorBody } from "../../src/schemas/common";
import type { Sample } from "./samples";

interface DocResponse {
  content?: Record<string, { schema?: unknown; examples?: Record<string, unknown> }>;
}
export interface DocOperation {
  method: string;
  /** The document's path template, e.g. /v1/admin/keys/{key_id}. */
  path: string;
  operationId?: string;
  security?: Record<string, string[]>[];
  responses: Record<string, DocResponse>;
}
interface RouteDefinition {
  type: string;
  route?: { method: string; path: string; responses: Record<string, { content?: Record<string, { schema?: z.ZodType }> }> };
}

export const BASE_URL = "https://api.test";

/** Every route of ../shared/API.md (§1 to §7). */
export const API_MD_ROUTES = [
  "GET /health",
  "GET /docs",
  "GET /v1/openapi.json",
  "GET /v1/personalize/methods",
  "POST /v1/personalize/feedback",
  "POST /v1/personalize/feedback/batch",
  "GET /v1/personalize/preferences",
  "PUT /v1/personalize/preferences",
  "GET /v1/personalize/consent",
  "GET /v1/personalize/offers",
  "DELETE /v1/personalize/customers/{customer_id}",
  "POST /v1/personalize/customers/{customer_id}/restore",
  "GET /v1/personalize/customers/{customer_id}/export",
  "POST /v1/admin/merchants",
  "GET /v1/admin/merchants/{merchant_id}",
  "PATCH /v1/admin/merchants/{merchant_id}",
  "POST /v1/admin/merchants/{merchant_id}/keys",
  "GET /v1/admin/merchants/{merchant_id}/keys",
  "DELETE /v1/admin/keys/{key_id}",
  "GET /v1/payment-methods",
  "GET /v1/analytics/summary",
  "GET /v1/analytics/timeseries",
  "POST /v1/checkout/sessions",
  // Ops: dead letters (src/routes/deadLetters.ts) and the merchant list (src/routes/admin.ts), not yet in API.md §4.
  "GET /v1/admin/merchants",
  "GET /v1/admin/dead-letters",
  "POST /v1/admin/dead-letters/redrive",
  "DELETE /v1/admin/dead-letters/{id}",
  // Ops: the data rights of the legacy customer ids . and .. (src/routes/adminCustomers.ts, docs/data-rights.md).
  "POST /v1/admin/merchants/{merchant_id}/customers/export",
  "POST /v1/admin/merchants/{merchant_id}/customers/delete",
  "POST /v1/admin/merchants/{merchant_id}/customers/restore",
];

/** The document as GET /v1/openapi.json serves it, and every operation in it. */
export function contractOf() {
  const app = createApp();
  const doc = openApiDocument(app, BASE_URL) as {
    paths: Record<string, Record<string, Omit<DocOperation, "method" | "path">>>;
    components: Record<string, Record<string, unknown>>;
  };
  const operations: DocOperation[] = Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => ({ ...op, method: method.toUpperCase(), path })),
  );
  /** The zod schema each route declared per status (the one that validates and documents). */
  const schemas = new Map<string, z.ZodType>();
  for (const def of app.openAPIRegistry.definitions as RouteDefinition[]) {
    if (def.type !== "route" || !def.route) continue;
    for (const [status, res] of Object.entries(def.route.responses)) {
      const schema = res.content?.["application/json"]?.schema;
      if (schema) schemas.set(`${def.route.method.toUpperCase()} ${def.route.path} ${status}`, schema);
    }
  }
  return { app, doc, operations, schemas };
}

const templateRe = (path: string) => new RegExp("^" + path.split(/(\{[^}]+\})/).map((part) => (part.startsWith("{") ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))).join("") + "$");

/** Fields of `input` that the schema's parse dropped (undocumented) or added (defaults the answer lacked). */
function driftedFields(input: unknown, output: unknown, at = ""): string[] {
  if (Array.isArray(input) && Array.isArray(output)) return input.flatMap((v, i) => driftedFields(v, output[i], `${at}${i}.`));
  if (!input || !output || typeof input !== "object" || typeof output !== "object" || Array.isArray(input) || Array.isArray(output)) return [];
  const a = input as Record<string, unknown>;
  const b = output as Record<string, unknown>;
  const dropped = Object.keys(a).filter((k) => !(k in b)).map((k) => `${at}${k} is not documented`);
  const added = Object.keys(b).filter((k) => !(k in a)).map((k) => `${at}${k} is missing (the schema fills a default)`);
  const nested = Object.keys(a).filter((k) => k in b).flatMap((k) => driftedFields(a[k], b[k], `${at}${k}.`));
  return [...dropped, ...added, ...nested];
}

/** Problems of one JSON body against a zod schema: validation issues and drifted fields. */
export function bodyProblems(schema: z.ZodType, body: unknown): string[] {
  const parsed = schema.safeParse(body);
  if (!parsed.success) return parsed.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`);
  return driftedFields(body, parsed.data);
}

export interface SampleCheck {
  problems: string[];
  /** "METHOD /template status" of every sample that matched a documented response. */
  validated: Set<string>;
}

/**
 * Checks recorded answers against the document: the status is declared for the operation, the body
 * validates against the declared schema (no undocumented fields), an error's code is one the document
 * lists for that status, 204 has no body, and X-Request-Id is present. Answers to paths that are no
 * operation (404 unknown route, 405, /demo) must still carry the contract's error body when they fail.
 */
export async function checkSamples(list: Sample[]): Promise<SampleCheck> {
  const { operations, schemas } = contractOf();
  const matchers = operations.map((op) => ({ op, re: templateRe(op.path) }));
  const problems: string[] = [];
  const validated = new Set<string>();
  for (const s of list) {
    const url = new URL(s.path, BASE_URL);
    const where = `${s.method} ${url.pathname} → ${s.status}`;
    let text: string;
    try {
      text = await s.body;
    } catch (err) {
      problems.push(`${where}: body could not be read (${String(err)})`);
      continue;
    }
    if (!s.headers.get("X-Request-Id")) problems.push(`${where}: no X-Request-Id header`);
    if (s.method === "OPTIONS") continue; // CORS preflight, answered by middleware for any path
    const op = matchers.find((m) => m.op.method === s.method && m.re.test(url.pathname))?.op;
    const json = (s.headers.get("Content-Type") ?? "").startsWith("application/json");
    if (!op) {
      if (s.status >= 400 && json) problems.push(...bodyProblems(ErrorBody, JSON.parse(text)).map((p) => `${where}: error body: ${p}`));
      continue;
    }
    const key = `${op.method} ${op.path} ${s.status}`;
    const documented = op.responses[String(s.status)];
    if (!documented) {
      problems.push(`${where}: ${op.method} ${op.path} does not document status ${s.status} (body ${text.slice(0, 200)})`);
      continue;
    }
    const media = documented.content ? Object.keys(documented.content) : [];
    if (media.length === 0) {
      if (text !== "") problems.push(`${where}: documented without a body, answered ${text.slice(0, 200)}`);
      validated.add(key);
      continue;
    }
    const type = (s.headers.get("Content-Type") ?? "").split(";")[0]!.trim();
    if (!media.includes(type)) {
      problems.push(`${where}: Content-Type ${type} is not one of ${media.join(", ")}`);
      continue;
    }
    if (type !== "application/json") {
      validated.add(key);
      continue;
    }
    const body = JSON.parse(text) as { error?: { code?: string } };
    const schema = schemas.get(key) ?? (s.status >= 400 ? ErrorBody : undefined);
    if (!schema) {
      problems.push(`${where}: no zod schema declared for ${key}`);
      continue;
    }
    const found = bodyProblems(schema, body).map((p) => `${where}: ${p}`);
    const codes = documented.content!["application/json"]!.examples;
    if (codes && s.status >= 400 && !(String(body.error?.code) in codes)) {
      found.push(`${where}: error code ${body.error?.code} is not listed for ${s.status} (${Object.keys(codes).join(", ")})`);
    }
    problems.push(...found);
    if (found.length === 0) validated.add(key);
  }
  return { problems, validated };
}
