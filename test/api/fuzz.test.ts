import { SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import committed from "../../clients/openapi.json";
import { ERROR_CODES } from "../../src/errors";
import { ADMIN_TOKEN, BASE, createMerchant, recordedFetch, type TestMerchant } from "../helpers/fixtures";
import { Rng } from "../../scripts/eval/random";

/**
 * A seeded mutation fuzzer over the HTTP surface. For every operation of the OpenAPI document
 * (clients/openapi.json; the worker serves the same operations at GET /v1/openapi.json) it builds a valid request
 * (path parameters, required query, the documented body example) and sends mutations of it: wrong
 * JSON types, missing and unknown fields, huge strings, deep nesting, unicode (lone surrogates, NUL,
 * RTL), numbers such as 1e309 / -0 / "NaN", repeated and unknown query parameters, broken percent
 * escapes, wrong Content-Types, empty bodies, bodies at and just over 64 KiB, other and unusual
 * methods, and odd paths (`//`, `%00`, encoded slashes, very long ones).
 *
 * Oracle (API.md §1 "Errors"), for every answer:
 * - never a 5xx, except a 503 UNAVAILABLE where the operation documents one;
 * - an X-Request-Id header of the contract's form;
 * - every error body is exactly {"error": {code, message, request_id, documentation_url, details?}}
 *   as JSON with charset=utf-8, the code one of the table's for that status, request_id the header,
 *   details present for VALIDATION_ERROR only;
 * - a mutation the document's schemas say is invalid (a type, pattern, enum, bound, unknown field,
 *   missing required field, body over 64 KiB, non-JSON body, no route) is never answered 2xx.
 * Answers are also checked against the document after the file (test/helpers/setup.ts).
 *
 * Deterministic: the same SEED gives the same requests. To explore other inputs, change SEED and
 * run this file alone; a failure message names the case (its index and label) to reproduce it.
 */

const SEED = 0x7a92;
/** Body mutation families (bodyCase) and query ones (queryCase): each operation gets every family once, with seeded choices inside. */
const BODY_STRATEGIES = 20;
const QUERY_STRATEGIES = 4;
/** Seeded extra cases per operation, of any family. */
const RANDOM_CASES_PER_OPERATION = 4;
const MAX_BODY = 64 * 1024;

// ─── the deterministic generator ────────────────────────────────────────────────────────────────

/** The eval generator's seeded PRNG (mulberry32), as a function. */
function seeded(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}
let random = seeded(SEED);
const int = (n: number) => Math.floor(random() * n);
const pick = <T>(list: readonly T[]): T => list[int(list.length)]!;

// ─── the document ───────────────────────────────────────────────────────────────────────────────

interface Schema {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minItems?: number;
  maxItems?: number;
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  example?: unknown;
  default?: unknown;
}
interface Parameter {
  $ref?: string;
  name: string;
  in: "query" | "path" | "header";
  required?: boolean;
  schema?: Schema;
  example?: unknown;
}
interface DocOp {
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, unknown>;
  security?: Record<string, string[]>[];
}
interface Doc {
  paths: Record<string, Record<string, DocOp>>;
  components: { schemas: Record<string, Schema>; parameters?: Record<string, Parameter> };
}
interface Op {
  method: string;
  path: string;
  query: Parameter[];
  pathParams: Parameter[];
  body: Schema | null;
  example: Record<string, unknown> | null;
  statuses: Set<number>;
  admin: boolean;
  keyless: boolean;
}

let doc: Doc;
let served: Doc;
function resolve<T extends { $ref?: string }>(x: T): T {
  if (!x.$ref) return x;
  const [, , kind, name] = x.$ref.split("/");
  return resolve((doc.components as unknown as Record<string, Record<string, T>>)[kind!]![name!]!);
}

function operationsOf(d: Doc): Op[] {
  return Object.entries(d.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => {
      const params = (op.parameters ?? []).map((p) => resolve(p));
      const bodySchema = op.requestBody?.content["application/json"]?.schema;
      const body = bodySchema ? resolve(bodySchema) : null;
      return {
        method: method.toUpperCase(),
        path,
        query: params.filter((p) => p.in === "query"),
        pathParams: params.filter((p) => p.in === "path"),
        body,
        example: (body?.example as Record<string, unknown> | undefined) ?? null,
        statuses: new Set(Object.keys(op.responses).map(Number)),
        admin: (op.security ?? []).some((s) => "AdminToken" in s),
        keyless: (op.security ?? []).length === 0,
      };
    }),
  );
}

// ─── what the document says is valid ────────────────────────────────────────────────────────────

const typeOf = (v: unknown): string => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v === "number" ? (Number.isInteger(v) ? "integer" : "number") : typeof v);

/** Whether the schema (as the document states it) rejects `value` for sure. false means "may accept". */
function violates(schema: Schema, value: unknown, depth = 0): boolean {
  const s = resolve(schema);
  if (depth > 20) return true;
  if (s.anyOf || s.oneOf) return (s.anyOf ?? s.oneOf)!.every((alt) => violates(alt, value, depth + 1));
  if (s.allOf && s.allOf.some((alt) => violates(alt, value, depth + 1))) return true;
  if (s.enum && !s.enum.some((e) => e === value)) return true;
  const types = s.type === undefined ? null : Array.isArray(s.type) ? s.type : [s.type];
  const t = typeOf(value);
  if (types && !types.includes(t) && !(t === "integer" && types.includes("number"))) return true;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return true;
    if (s.minimum !== undefined && value < s.minimum) return true;
    if (s.maximum !== undefined && value > s.maximum) return true;
    if (s.exclusiveMinimum !== undefined && value <= s.exclusiveMinimum) return true;
    if (s.exclusiveMaximum !== undefined && value >= s.exclusiveMaximum) return true;
  }
  if (typeof value === "string") {
    const length = [...value].length;
    if (s.minLength !== undefined && length < s.minLength) return true;
    if (s.maxLength !== undefined && length > s.maxLength) return true;
    if (s.pattern !== undefined && !new RegExp(s.pattern).test(value)) return true;
  }
  if (Array.isArray(value)) {
    if (s.minItems !== undefined && value.length < s.minItems) return true;
    if (s.maxItems !== undefined && value.length > s.maxItems) return true;
    if (s.items && value.some((v) => violates(s.items!, v, depth + 1))) return true;
  }
  if (t === "object" && s.properties) {
    const obj = value as Record<string, unknown>;
    if ((s.required ?? []).some((k) => !Object.hasOwn(obj, k))) return true;
    for (const [k, v] of Object.entries(obj)) {
      // Own properties only: "constructor" or "__proto__" is no field of the document's.
      const prop = Object.hasOwn(s.properties, k) ? s.properties[k] : undefined;
      if (!prop) {
        // API.md §1: unknown body fields are rejected, whatever the document says; only a map
        // (additionalProperties: a schema, e.g. scoring_weights) takes keys of its own.
        if (typeof s.additionalProperties !== "object") return true;
        if (violates(s.additionalProperties, v, depth + 1)) return true;
        continue;
      }
      if (violates(prop, v, depth + 1)) return true;
    }
  }
  return false;
}

/** A query parameter's schema against its text, as a query string carries it. */
function queryViolates(schema: Schema | undefined, text: string | null): boolean {
  if (!schema) return false;
  const s = resolve(schema);
  if (text === null) return true; // a broken percent escape: no value at all
  if (s.type === "integer" || s.type === "number") {
    if (!/^-?\d+(\.\d+)?$/.test(text)) return true;
    return violates(s, Number(text));
  }
  if (s.type === "boolean") return text !== "true" && text !== "false";
  return violates(s, text);
}

const decodeOrNull = (raw: string): string | null => {
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
};

// ─── hostile values ─────────────────────────────────────────────────────────────────────────────

const nested = (depth: number, kind: "array" | "object"): unknown => {
  let v: unknown = "x";
  for (let i = 0; i < depth; i++) v = kind === "array" ? [v] : { a: v };
  return v;
};
const UNICODE = ["\ud800", "\udfff", "a\ud83dz", "\u0000", "cus\u0000x", "\u202egnp.exe", "\u200f\u05d0\u05d1", "😀", "e\u0301", "\ufeff", "\uffff", "Ⅻ", "ß", "İ", "\u2028", "\r\n", "\t", "💩".repeat(40)];
const HUGE_LENGTHS = [129, 257, 1001, 4097, 20_000, 66_000];
const JSON_VALUES: unknown[] = [null, true, false, 0, -1, 1.5, 1e12 + 1, Number.MAX_SAFE_INTEGER + 2, "", "0", "true", "null", "NaN", "Infinity", "-0", "1e309", [], [null], ["visa", "visa"], {}, { toString: 1 }, { __proto__x: 1 }];
/** Raw JSON number texts: JSON.parse turns 1e309 into Infinity, -0 into -0. */
const RAW_NUMBERS = ["1e309", "-1e309", "-0", "0.0", "1E2", "1e-400", "9007199254740993", "1000000000001", "0.5", "-1", "1e12", "123456789012345678901234567890"];
// Sent as written (percent escapes included), so a space is spelled %20: URL parsing would strip a trailing one.
const QUERY_VALUES = ["Mars/Olympus_Mons", "Etc/GMT+14", "Etc/GMT-15", "A", "ZZ", "XXX", "XTS", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "9999-12-30T00:00:00Z", "1970-01-01T00:00:00Z", "1000000000000", "1000000000001", "0", "100", "999", "cs_x_secret_y", "dec_AAAA", "", "%20", "-0", "1e309", "NaN", "Infinity", "0x10", "1.0", "01", "+1", "-1", "9".repeat(30), "true", "null", "[]", "%00", "%ED%A0%80", "%F0%9F%98%80", "%E2%80%AE", "%", "%zz", "%C0%AF", "a%2Fb", "..%2F..", "%2e%2e", "x".repeat(5000), "US%00", "us", "USD%20", "%20USD", "mobile%00", "mobile%0A", "Europe/Amsterdam/../x", "2026-02-30T00:00:00Z", "2026-02-03T15:30:00+01:00"];
const PATH_VALUES = ["%00", "a%00b", "%2F", "a%2Fb", "%2e", "%2e%2e", "..%2Fadmin", "%ED%A0%80", "%", "%zz", "%E2%80%AEx", "%F0%9F%98%80", "x".repeat(129), "y".repeat(6000), "a%20b", "cus_ok%3Bdrop", "%5C", "*", "1e309", "-0", "NaN", "0", "-1"];
// workerd's Request takes only methods it knows (not "FOO") and upper-cases them all ("patch" is PATCH).
const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "QUERY", "patch", "Get"];

/** Valid-looking values at the edges of the formats (and a little past them). */
const EDGE_VALUES: unknown[] = [0, 1, 100, 1e12, 1e12 - 1, 86_400, 60, 59, 50, 50.5, 0.0001, 1e-7, 10_000_000, 1_000_000, "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-02-29T00:00:00Z", "2024-02-29T23:59:59.999999999Z", "1970-01-01T00:00:00Z", "ZZ", "XX", "AQ", "XXX", "XTS", "ZWL", "a".repeat(128), "a".repeat(64), ":", "@", "-", "_", "visa", "apple_pay", "ideal", "http://[::1]:8787", "https://a", "http://127.1", "https://x.example:65535", "https://x.example:99999", true, false, [], ["mobile", "mobile"], ["US", "US"]];

/** A random path to a leaf (or a list) inside `value`: ["offers", 0, "title"]. */
function randomPath(value: unknown): (string | number)[] {
  const path: (string | number)[] = [];
  let cur = value;
  for (let depth = 0; depth < 6; depth++) {
    if (Array.isArray(cur) && cur.length > 0) {
      const i = int(cur.length);
      path.push(i);
      cur = cur[i];
    } else if (cur && typeof cur === "object" && Object.keys(cur).length > 0) {
      const k = pick(Object.keys(cur));
      path.push(k);
      cur = (cur as Record<string, unknown>)[k];
    } else break;
    if (int(4) === 0) break; // stop early sometimes: a whole list or object is mutated too
  }
  return path;
}

function setAt(target: unknown, path: (string | number)[], value: unknown): void {
  let cur = target as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) cur = cur[key] as Record<string | number, unknown>;
  cur[path.at(-1)!] = value;
}

// ─── requests ───────────────────────────────────────────────────────────────────────────────────

interface Case {
  label: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
  /** The document (or the contract) says this request is invalid: a 2xx is a failure. */
  reject: boolean;
  /** Exactly this status, where the contract names it (413 over 64 KiB, 415 not JSON). */
  status?: number;
  /** Not this status (a body of exactly 64 KiB is not too large). */
  notStatus?: number;
  op?: Op;
  cf?: Record<string, unknown>;
}

let merchant: TestMerchant;
let target: TestMerchant; // the admin routes' merchant, so that a PATCH cannot throttle the fuzzing merchant
let serial = 0;

function credentialsOf(op: Op): Record<string, string> {
  if (op.keyless) return {};
  return op.admin ? { Authorization: `Bearer ${ADMIN_TOKEN}` } : { "X-API-Key": merchant.secretKey };
}

function validPathValue(op: Op, name: string): string {
  switch (name) {
    case "merchant_id":
      return op.admin ? target.merchantId : merchant.merchantId;
    case "customer_id":
      return "cus_fuzz";
    case "key_id":
      return "key_doesnotexist";
    default:
      return "1";
  }
}

function pathOf(op: Op, override?: [string, string]): string {
  return op.path.replace(/\{([^}]+)\}/g, (_, name: string) => (override && override[0] === name ? override[1] : encodeURIComponent(validPathValue(op, name))));
}

function exampleOf(schema: Schema | undefined): string {
  const s = schema ? resolve(schema) : {};
  return String(s.example ?? s.enum?.[0] ?? s.default ?? "x");
}

function requiredQuery(op: Op): [string, string][] {
  return op.query.filter((p) => p.required || (p.name === "customer_id" && !op.keyless)).map((p) => [p.name, String(p.example ?? exampleOf(p.schema))]);
}

const queryString = (pairs: [string, string][], raw = false) => (pairs.length === 0 ? "" : "?" + pairs.map(([k, v]) => `${raw ? k : encodeURIComponent(k)}=${raw ? v : encodeURIComponent(v)}`).join("&"));

function validBody(op: Op): Record<string, unknown> | null {
  if (!op.body) return null;
  const body = structuredClone(op.example ?? {});
  // A merchant created by the fuzzer gets an id of its own (the example's exists after the first one).
  if (op.method === "POST" && op.path === "/v1/admin/merchants") body.merchant_id = `m_fuzz_${++serial}`;
  return body;
}

function baseCase(op: Op, label: string): Case {
  const body = validBody(op);
  return {
    label,
    op,
    method: op.method,
    path: pathOf(op) + queryString(requiredQuery(op)),
    headers: { ...credentialsOf(op), ...(body ? { "Content-Type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
    reject: false,
  };
}

/** One body mutation of an operation that takes a JSON object. */
function bodyCase(op: Op, strategy: number): Case {
  const c = baseCase(op, "");
  const body = validBody(op)!;
  const schema = op.body!;
  const props = Object.keys(schema.properties ?? {});
  const field = props.length > 0 ? pick(props) : "x";
  const fieldSchema = (schema.properties && Object.hasOwn(schema.properties, field) ? schema.properties[field] : undefined) ?? {};
  const set = (value: unknown, what: string): Case => {
    const next = { ...body, [field]: value };
    const text = JSON.stringify(next);
    const over = new TextEncoder().encode(text).byteLength > MAX_BODY;
    return { ...c, label: `body ${field} ${what}`, body: text, reject: over || violates(schema, next), ...(over ? { status: 413 } : {}) };
  };
  const raw = (text: string, what: string, reject: boolean, status?: number): Case => ({ ...c, label: `body ${what}`, body: text, reject, ...(status ? { status } : {}) });
  switch (strategy) {
    case 18: {
      // A coding the worker never decodes: the bytes are not what the client meant (RFC 9110 §15.5.16).
      const coding = pick(["gzip", "br", "deflate", "x-bogus", "identity, gzip", "GZIP"]);
      return { ...c, label: `Content-Encoding ${coding}`, headers: { ...c.headers, "Content-Encoding": coding }, reject: true, status: 415 };
    }
    case 19: {
      // Nesting as deep as 64 KiB allows, written as text (too deep for JSON.stringify's stack to build).
      const depth = pick([5_000, 16_000, 32_000]);
      const text = JSON.stringify({ ...body, [field]: "__DEEP__" }).replace('"__DEEP__"', "[".repeat(depth) + "]".repeat(depth));
      const over = new TextEncoder().encode(text).byteLength > MAX_BODY;
      return raw(text, `${field} nested ${depth} deep`, true, over ? 413 : undefined);
    }
    case 14:
    case 15: {
      // A value deep inside the example (an offer's field, an event's, a list item).
      const next = structuredClone(body);
      const path = randomPath(next);
      if (path.length < 2) return set(pick(JSON_VALUES), "(no nested field)");
      const value = pick([...JSON_VALUES, pick(UNICODE), "x".repeat(pick(HUGE_LENGTHS)), nested(200, "array"), ...EDGE_VALUES]);
      setAt(next, path, structuredClone(value));
      const text = JSON.stringify(next);
      const over = new TextEncoder().encode(text).byteLength > MAX_BODY;
      return { ...c, label: `body ${path.join(".")} = ${JSON.stringify(value).slice(0, 30)}`, body: text, reject: over || violates(schema, next), ...(over ? { status: 413 } : {}) };
    }
    case 16: {
      // Values at the edges the document allows (and some just past them), in two fields at once.
      const next = structuredClone(body);
      for (let i = 0; i < 2; i++) {
        const path = randomPath(next);
        if (path.length > 0) setAt(next, path, structuredClone(pick(EDGE_VALUES))); // a copy: the lists above stay as they are
      }
      return { ...c, label: `body edges ${JSON.stringify(next).slice(0, 60)}`, body: JSON.stringify(next), reject: violates(schema, next) };
    }
    case 17: {
      // Many items in a list field.
      const lists = Object.entries(body).filter(([, v]) => Array.isArray(v) && (v as unknown[]).length > 0);
      if (lists.length === 0) return set(Array.from({ length: 300 }, (_, i) => i), "300 items");
      const [name, list] = pick(lists) as [string, unknown[]];
      const n = pick([51, 60, 101, 251, 1000]);
      const next = { ...body, [name]: Array.from({ length: n }, (_, i) => (typeof list[0] === "object" ? { ...(list[0] as object), ...("event_id" in (list[0] as object) ? { event_id: `e_${i}` } : {}), ...("offer_id" in (list[0] as object) ? { offer_id: `o_${i}` } : {}) } : list[i % list.length])) };
      const text = JSON.stringify(next);
      const over = new TextEncoder().encode(text).byteLength > MAX_BODY;
      return { ...c, label: `body ${name} × ${n}`, body: text, reject: over || violates(schema, next), ...(over ? { status: 413 } : {}) };
    }
    case 0:
    case 1: {
      const value = pick(JSON_VALUES);
      return set(value, `= ${JSON.stringify(value)}`);
    }
    case 2: {
      const n = pick(HUGE_LENGTHS);
      return set(pick(["x", "é", "😀", "\u0000"]).repeat(n), `huge string ×${n}`);
    }
    case 3: {
      const depth = pick([64, 500, 3000]);
      return set(nested(depth, pick(["array", "object"] as const)), `nested ${depth}`);
    }
    case 4: {
      const u = pick(UNICODE);
      const value = typeof fieldSchema.example === "string" && int(2) === 0 ? fieldSchema.example + u : u;
      return set(value, `unicode ${JSON.stringify(value).slice(0, 30)}`);
    }
    case 5: {
      // A raw number text in place of the field's value (JSON.stringify could never write 1e309).
      const num = pick(RAW_NUMBERS);
      const text = JSON.stringify({ ...body, [field]: "__NUM__" }).replace('"__NUM__"', num);
      return raw(text, `${field} = ${num}`, violates(schema, JSON.parse(text)));
    }
    case 6: {
      const { [field]: _dropped, ...without } = body;
      return raw(JSON.stringify(without), `without ${field}`, violates(schema, without));
    }
    case 7: {
      const extra = pick(["x_fuzz", "__proto__", "constructor", "Customer_id", "customer_id ", "", "\u0000", "merchant_id\u0000"]);
      const text = JSON.stringify(body).replace(/^\{/, `{${JSON.stringify(extra)}:1${Object.keys(body).length > 0 ? "," : ""}`);
      return raw(text, `extra field ${JSON.stringify(extra)}`, violates(schema, JSON.parse(text)));
    }
    case 8: {
      const whole = pick(["", "null", "[]", "1", '"x"', "true", "{", '{"a":', "}", "{}", "\ufeff{}", "[{}]", '{"a":1,}', "{'a':1}", "\u0000", "NaN", "{}{}", " \n\t{} "]);
      let reject: boolean;
      try {
        const parsed: unknown = whole.trim() === "" ? {} : JSON.parse(whole.replace(/^\ufeff/, ""));
        reject = violates(schema, parsed);
      } catch {
        reject = true;
      }
      return raw(whole, `whole ${JSON.stringify(whole).slice(0, 20)}`, reject);
    }
    case 9: {
      // Duplicate keys: JSON.parse keeps the last, so the request is what its last value says.
      const value = body[field] ?? "x";
      const text = JSON.stringify(body).replace(/^\{/, `{${JSON.stringify(field)}:${JSON.stringify(pick(JSON_VALUES))},`).replace(/\}$/, `,${JSON.stringify(field)}:${JSON.stringify(value)}}`);
      return raw(text, `duplicate ${field}`, violates(schema, JSON.parse(text)));
    }
    case 10: {
      // Exactly 64 KiB (valid JSON padded with whitespace) is not too large; one byte more is.
      const text = JSON.stringify(body);
      const atLimit = text + " ".repeat(MAX_BODY - new TextEncoder().encode(text).byteLength);
      return int(2) === 0
        ? { ...raw(atLimit, "exactly 64 KiB", violates(schema, body)), notStatus: 413 }
        : raw(atLimit + " ", "64 KiB + 1", true, 413);
    }
    case 11: {
      const type = pick(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", "application/jsonx", "json", "*/*", "application/json-patch"]);
      return { ...c, label: `Content-Type ${type}`, headers: { ...c.headers, "Content-Type": type }, reject: true, status: 415 };
    }
    case 12: {
      // No Content-Type at all on a body (a Uint8Array body gets none from fetch).
      const { "Content-Type": _t, ...headers } = c.headers;
      return { ...c, label: "body without Content-Type", headers, body: new TextEncoder().encode(c.body as string), reject: true, status: 415 };
    }
    default: {
      // Bytes that are not UTF-8, whatever the charset says.
      const bytes = new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0xff, 0x22, 0x7d]);
      return { ...c, label: "body not UTF-8", headers: { ...c.headers, "Content-Type": pick(["application/json", "application/json; charset=latin1"]) }, body: bytes, reject: true };
    }
  }
}

function queryCase(op: Op, strategy: number): Case {
  const c = baseCase(op, "");
  const pairs = requiredQuery(op);
  const params = op.query.filter((p) => p.name !== "api_key" || op.keyless);
  if (strategy === 0 || params.length === 0) {
    const name = pick(["foo", "Customer_id", "customer_id[]", "customer_id ", "%00", "api_key%00", "merchant_id.x", "__proto__"]);
    const q = [...pairs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`), `${name}=1`].join("&");
    return { ...c, label: `unknown query ${name}`, path: `${pathOf(op)}?${q}`, reject: true };
  }
  const param = pick(params);
  if (strategy === 1) {
    // Repeated: two values for one parameter. Two different values are ambiguous: never a 2xx.
    const a = String(param.example ?? exampleOf(param.schema));
    const b = pick([a, pick(QUERY_VALUES), "other"]);
    const rest = pairs.filter(([k]) => k !== param.name);
    const q = [...rest.map(([k, v]) => `${k}=${encodeURIComponent(v)}`), `${param.name}=${encodeURIComponent(a)}`, `${param.name}=${b}`].join("&");
    const decodedB = decodeOrNull(b);
    return { ...c, label: `repeated ${param.name}=${a}&${b.slice(0, 20)}`, path: `${pathOf(op)}?${q}`, reject: decodedB !== a || queryViolates(param.schema, a) };
  }
  const required = op.query.find((p) => p.required && pairs.some(([k]) => k === p.name));
  if (strategy === 2 && required) {
    return { ...c, label: `missing ${required.name}`, path: pathOf(op) + queryString(pairs.filter(([k]) => k !== required.name)), reject: true };
  }
  const value = pick(QUERY_VALUES);
  const rest = pairs.filter(([k]) => k !== param.name);
  const q = [...rest.map(([k, v]) => `${k}=${encodeURIComponent(v)}`), `${param.name}=${value}`].join("&");
  // A broken percent escape stays as written (Hono reads it so): held to the schema like any text.
  const decoded = decodeOrNull(value.replace(/\+/g, " ")) ?? value;
  // customer_id on a keyed route is how the secret key names the customer; merchant_id must be the key's; api_key must be the key.
  const reject = queryViolates(param.schema, decoded) || (param.name === "merchant_id" && !op.admin) || (param.name === "api_key" && !op.keyless) || (param.name === "client_secret");
  return { ...c, label: `query ${param.name}=${value.slice(0, 24)}`, path: `${pathOf(op)}?${q}`, reject };
}

function pathCase(op: Op): Case {
  const c = baseCase(op, "");
  const query = queryString(requiredQuery(op));
  if (op.pathParams.length > 0 && int(2) === 0) {
    const param = pick(op.pathParams);
    const value = pick(PATH_VALUES);
    const decoded = decodeOrNull(value);
    return { ...c, label: `path ${param.name}=${value.slice(0, 24)}`, path: pathOf(op, [param.name, value]) + query, reject: decoded === null || violates(param.schema ?? {}, decoded) || decoded.includes("/") || decoded === "." || decoded === ".." };
  }
  const p = pathOf(op);
  const variants: [string, string][] = [
    ["//", `/${p}`],
    ["inner //", p.replace(/\/([^/]+)$/, "//$1")],
    ["trailing /", `${p}/`],
    ["%00", `${p}%00`],
    ["%2F", p.replace(/^(\/.+)\/([^/]+)$/, "$1%2F$2").replace(/^\/([^/]+)$/, "/x%2F$1")],
    ["upper case", p.toUpperCase()],
    ["long", `${p}/${"a".repeat(8000)}`],
    ["long segment", p.replace(/\/([^/]+)$/, `/${"b".repeat(16_000)}`)],
    ["/./", p.replace(/\/([^/]+)$/, "/./$1")],
    [";param", `${p};x=1`],
    ["%2e%2e", `${p}/%2e%2e/x`],
    ["backslash", p.replace(/\//g, "\\")],
  ];
  const [what, path] = pick(variants);
  // URL parsing removes "/./" (and "x/%2e%2e" with the x): those name the route itself.
  const same = what === "/./" || what === "%2e%2e" || what === "backslash";
  return { ...c, label: `path ${what}`, path: path + query, reject: !same };
}

function methodCase(op: Op, allowed: Set<string>): Case {
  const c = baseCase(op, "");
  const method = pick(METHODS.filter((m) => m !== op.method));
  const upper = method.toUpperCase();
  const normalized = upper;
  // A plain OPTIONS of a known path is 204 with Allow (README "Errors"): neither valid nor invalid input.
  const ok = allowed.has(normalized);
  const sendsBody = normalized !== "GET" && normalized !== "HEAD";
  const { body: _b, ...rest } = c;
  return { ...rest, label: `method ${method}`, method, ...(sendsBody && c.body ? { body: c.body } : {}), reject: !ok };
}

function authCase(op: Op): Case {
  const c = baseCase(op, "");
  const { "X-API-Key": _k, Authorization: _a, ...headers } = c.headers;
  const variant = int(7);
  const auth: Record<string, string>[] = [
    {},
    { "X-API-Key": "tp2_sk_" + "A".repeat(43) },
    { "X-API-Key": merchant.publishableKey },
    { Authorization: `Bearer ${merchant.secretKey}x` },
    { Authorization: "Bearer " },
    { "X-API-Key": merchant.secretKey, Authorization: `Bearer ${merchant.publishableKey}` },
    { Authorization: `Bearer ${ADMIN_TOKEN}`, "X-API-Key": merchant.secretKey },
  ];
  const h = { ...headers, ...auth[variant] };
  // Each variant but the last names no valid credential for the route (a publishable key is refused
  // with customer_id and on every other route); the admin token as a bearer beside the secret key
  // stands aside on merchant routes, and the key beside the admin token is ignored on admin routes.
  return { ...c, label: `auth variant ${variant}`, headers: h, reject: !op.keyless && variant !== 6 };
}

function headerCase(op: Op): Case {
  const c = baseCase(op, "");
  if (int(3) === 0) {
    // A preflight: no key, an origin and the method and headers it asks for.
    const origin = pick(["https://shop.example", "https://evil.example", "null", "https://shop.example.", "HTTPS://SHOP.EXAMPLE:443", "https://shop.example/path", "file://", "x".repeat(300)]);
    const method = pick([op.method, "DELETE", "FOO BAR", "", "get"]);
    const { "X-API-Key": _k, Authorization: _a, ...headers } = c.headers;
    return { ...c, label: `preflight ${origin.slice(0, 30)} ${method}`, method: "OPTIONS", headers: { ...headers, Origin: origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": pick(["x-api-key, content-type", "", "x-evil", "*"]) }, body: undefined, reject: false };
  }
  if (int(3) === 0) {
    // What the edge says about the request (request.cf): odd countries and time zones.
    // (Strings only: the edge always sends them as text, and no client can set request.cf.)
    const cf = pick([{ country: "ZZ" }, { country: "T1" }, { country: "XX" }, { country: "" }, { timezone: "Mars/Olympus_Mons" }, { timezone: "" }, { timezone: "Etc/GMT+14" }, { timezone: "America/Argentina/ComodRivadavia" }, { country: "us", timezone: "UTC" }, { timezone: "x".repeat(500) }]);
    return { ...c, label: `cf ${JSON.stringify(cf)}`, cf, reject: false };
  }
  const variant = pick([
    ["X-Request-Id", "x".repeat(129)],
    ["X-Request-Id", "bad id!"],
    ["X-Request-Id", "../../etc"],
    ["X-Request-Id", ""],
    ["Content-Length", "abc"],
    ["Accept", "text/html"],
    ["Accept-Encoding", "gzip;q=abc"],
    ["Idempotency-Key", "k".repeat(300)],
    ["Idempotency-Key", "order 1001\t;,\"x\""],
    ["Idempotency-Key", ""],
    ["If-Match", "garbage"],
    ["Origin", "null"],
    ["Origin", "https://evil.example"],
    ["CF-IPCountry", "XX"],
    ["User-Agent", "Mozilla/5.0 (iPhone) ".repeat(400)],
    ["CF-IPCountry", "T1"],
    ["CF-IPCountry", "us"],
    ["If-Match", '"v99999999999999999999999"'],
    ["If-Match", 'W/"v1", *, "v1"'],
    ["If-Match", '"v-1"'],
    ["Authorization", "Basic dXNlcjpwYXNz"],
  ] as const);
  return { ...c, label: `header ${variant[0]}: ${variant[1].slice(0, 20)}`, headers: { ...c.headers, [variant[0]]: variant[1] }, reject: false };
}

// ─── the oracle ─────────────────────────────────────────────────────────────────────────────────

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;
const problems: string[] = [];
const tally = { sent: 0, rejected: 0, accepted: 0, mustReject: 0 };

async function run(index: number, c: Case): Promise<void> {
  const where = `#${index} ${c.method} ${c.path.slice(0, 100)}${c.path.length > 100 ? "…" : ""} [${c.label}]`;
  const init: RequestInit = { method: c.method, headers: c.headers };
  if (c.body !== undefined) init.body = c.body;
  if (c.cf) (init as { cf?: unknown }).cf = c.cf;
  let res: Response;
  try {
    // The document check after the file (setup.ts) reads recorded answers by their method; HEAD has no body to check.
    // A path that is not one for new URL(path, base) (`//`, a backslash) is sent but not recorded.
    const canonical = c.method === c.method.toUpperCase() && c.method !== "HEAD" && !c.path.startsWith("//") && !c.path.includes("\\");
    res = canonical ? await recordedFetch(c.path, init) : await SELF.fetch(`${BASE}${c.path}`, init);
  } catch (err) {
    problems.push(`${where}: the request failed: ${String(err)}`);
    return;
  }
  tally.sent += 1;
  if (c.reject) tally.mustReject += 1;
  const text = c.method === "HEAD" ? "" : await res.text();
  const fail = (why: string) => problems.push(`${where} → ${res.status}: ${why} ${text.slice(0, 200)}`);
  const id = res.headers.get("X-Request-Id");
  if (!id || !REQUEST_ID.test(id)) fail(`X-Request-Id ${JSON.stringify(id)}`);
  const documented503 = c.op?.statuses.has(503) ?? false;
  if (res.status >= 500 && !(res.status === 503 && documented503)) fail("a 5xx");
  if (c.status !== undefined && res.status !== c.status) fail(`expected ${c.status}`);
  if (c.notStatus !== undefined && res.status === c.notStatus) fail(`must not be ${c.notStatus}`);
  if (res.status >= 200 && res.status < 300) {
    tally.accepted += 1;
    if (c.reject) fail("2xx for input the contract rejects");
    if (res.status === 204 && text !== "") fail("a 204 with a body");
    return;
  }
  if (res.status < 400) return; // 304 and the like: no error body
  tally.rejected += 1;
  if (c.method === "HEAD") return; // the GET's status and headers, no body
  const type = res.headers.get("Content-Type") ?? "";
  if (!/^application\/json;\s*charset=utf-8$/i.test(type)) fail(`Content-Type ${type}`);
  let body: { error?: Record<string, unknown> } & Record<string, unknown>;
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    fail("an error body that is not JSON");
    return;
  }
  const e = body.error;
  if (Object.keys(body).join() !== "error" || !e || typeof e !== "object") {
    fail("not {error: …}");
    return;
  }
  const extra = Object.keys(e).filter((k) => !["code", "message", "request_id", "documentation_url", "details"].includes(k));
  if (extra.length > 0) fail(`unexpected error fields ${extra.join()}`);
  const code = e.code as keyof typeof ERROR_CODES;
  if (typeof code !== "string" || ERROR_CODES[code] !== res.status) fail(`code ${String(code)} is not one of status ${res.status}`);
  if (typeof e.message !== "string" || e.message === "") fail("no message");
  if (e.request_id !== id) fail(`request_id ${String(e.request_id)} is not the header's ${id}`);
  if (e.documentation_url !== `https://docs.tap2.com/errors#${String(code)}`) fail(`documentation_url ${String(e.documentation_url)}`);
  if ("details" in e) {
    const ok = code === "VALIDATION_ERROR" && Array.isArray(e.details) && e.details.every((d: unknown) => typeof d === "object" && d !== null && typeof (d as { path?: unknown }).path === "string" && typeof (d as { message?: unknown }).message === "string");
    if (!ok) fail("details on a non-validation error, or not [{path, message}]");
  }
}

// ─── the walk ───────────────────────────────────────────────────────────────────────────────────

let operations: Op[] = [];

beforeAll(async () => {
  random = seeded(SEED);
  const limit = { rate_limit: { requests_per_hour: 10_000_000, burst: 1_000_000 } };
  merchant = await createMerchant(limit);
  target = await createMerchant(limit);
  // The committed document (what clients are generated from) is the oracle; the served one must list the same operations.
  served = await (await SELF.fetch(`${BASE}/v1/openapi.json`)).json<Doc>();
  doc = committed as unknown as Doc;
  operations = operationsOf(doc);
});

describe("seeded fuzzing of every documented operation", () => {
  it("walks the document clients are generated from", () => {
    const names = (d: Doc) => operationsOf(d).map((o) => `${o.method} ${o.path}`).sort();
    expect(names(served)).toEqual(names(doc));
    expect(operations.length).toBeGreaterThanOrEqual(25);
  });

  it("no answer is a 5xx, every error is the contract's, and invalid input is never a 2xx", async () => {
    const cases: Case[] = [];
    const allowedOf = new Map<string, Set<string>>();
    for (const op of operations) {
      const set = allowedOf.get(op.path) ?? new Set<string>();
      set.add(op.method);
      if (op.method === "GET") set.add("HEAD");
      set.add("OPTIONS");
      allowedOf.set(op.path, set);
    }
    for (const op of operations) {
      cases.push(baseCase(op, "valid"));
      // Every family once (so that a regression in any of them is caught whatever the seed) …
      if (op.body) for (let k = 0; k < BODY_STRATEGIES; k++) cases.push(bodyCase(op, k));
      for (let k = 0; k < QUERY_STRATEGIES; k++) cases.push(queryCase(op, k));
      cases.push(pathCase(op), methodCase(op, allowedOf.get(op.path)!), authCase(op), headerCase(op));
      // … and a few more of any family.
      for (let i = 0; i < RANDOM_CASES_PER_OPERATION; i++) {
        const r = int(6);
        if (op.body && r === 0) cases.push(bodyCase(op, int(BODY_STRATEGIES)));
        else if (r <= 1) cases.push(queryCase(op, int(QUERY_STRATEGIES + 2)));
        else if (r === 2) cases.push(pathCase(op));
        else if (r === 3) cases.push(methodCase(op, allowedOf.get(op.path)!));
        else if (r === 4) cases.push(authCase(op));
        else cases.push(headerCase(op));
      }
    }
    // Paths no route has.
    for (const path of ["/", "//", "/v1", "/v1/", "/%00", "/v1/%2e%2e/nope", "/v2/personalize/methods", `/${"z".repeat(30_000)}`, "/v1/admin", "/v1/admin/%2F", "/v1/personalize/customers/", "/v1/personalize/customers//export", "/%E0%A4%A", "/v1/personalize/methods%3Fcustomer_id=x"]) {
      cases.push({ label: "no such route", method: pick(["GET", "POST", "DELETE"]), path, headers: { "X-API-Key": merchant.secretKey }, reject: true });
    }
    const started = Date.now();
    for (const [i, c] of cases.entries()) await run(i, c);
    const elapsed = Date.now() - started;

    console.log(`fuzz seed ${SEED}: ${JSON.stringify(tally)} in ${elapsed} ms`);
    expect(problems, `seed ${SEED}`).toEqual([]);
    // The walk must have done what it says: enough requests, most of them rejected, some accepted.
    expect(tally.sent).toBeGreaterThanOrEqual(500);
    expect(tally.mustReject).toBeGreaterThanOrEqual(350);
    expect(tally.accepted).toBeGreaterThanOrEqual(60);
    expect(elapsed).toBeLessThan(20_000);
  }, 60_000);
});
