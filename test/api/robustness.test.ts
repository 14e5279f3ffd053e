import { SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { createMerchant, recordedFetch, type TestMerchant } from "../helpers/fixtures";
import { concretePath, credentials, documentedOperations, type Operation } from "../helpers/operations";

/**
 * Hostile input against every documented operation, driven by the worker's own OpenAPI document:
 * each query parameter, path parameter and top-level body field in turn gets values a buggy or
 * malicious client sends (wrong types, huge, empty, control characters, injection strings), on top
 * of an otherwise valid request. The rule under test (brief, API.md §1): bad input is a 4xx in the
 * contract's error format — never a 5xx, never an HTML or empty error. The answers are also checked
 * against the OpenAPI document after the file (test/helpers/setup.ts), so an undocumented status fails too.
 */

const STRINGS = ["", " ", "x".repeat(3000), "-1", "0", "1e400", "NaN", "Infinity", "12.5", "null", "true", "[]", "{}", "\u0000", "\u202e😀", "<script>alert(1)</script>", "' OR 1=1 --", "%", "../../etc/passwd"];
const VALUES: unknown[] = [null, true, -1, 0, 1.5, 1e308, -1e308, "", "x".repeat(10_000), "\u0000😀", [], [1, "a", null], {}, { a: { b: [] } }, Array.from({ length: 2000 }, () => "visa")];
const BODIES = ["", "null", "[]", "1", '"text"', "{", '{"a":', "{}", '{"__proto__":{"polluted":true}}', "[".repeat(5000) + "]".repeat(5000), "\uFEFF{}"];

let merchant: TestMerchant;
let operations: Operation[] = [];
const problems: string[] = [];

beforeAll(async () => {
  merchant = await createMerchant({ rate_limit: { requests_per_hour: 10_000_000, burst: 1_000_000 } });
  operations = documentedOperations();
});

/** A valid value for each path parameter, so that only the value under test is wrong. */
const validPath = (path: string) => concretePath(path, merchant, "cus_fuzz");

async function send(op: Operation, url: string, body?: string, label = ""): Promise<void> {
  const headers = new Headers({ "Content-Type": "application/json", ...credentials(op, merchant) });
  const init: RequestInit = { method: op.method, headers };
  if (body !== undefined && op.method !== "GET") init.body = body;
  const res = await recordedFetch(url, init);
  const where = `${op.method} ${url.slice(0, 120)} ${label}`.trim();
  if (res.status >= 500) {
    problems.push(`${where} → ${res.status} ${(await res.text()).slice(0, 200)}`);
    return;
  }
  if (res.status >= 400) {
    const text = await res.text();
    let parsed: { error?: { code?: unknown; message?: unknown; request_id?: unknown } } = {};
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      problems.push(`${where} → ${res.status} not JSON: ${text.slice(0, 120)}`);
      return;
    }
    const e = parsed.error;
    if (typeof e?.code !== "string" || typeof e.message !== "string" || e.request_id !== res.headers.get("X-Request-Id")) {
      problems.push(`${where} → ${res.status} not the contract's error body: ${text.slice(0, 160)}`);
    }
  } else await res.body?.cancel();
}

const bodyOf = (op: Operation) => (op.example ? JSON.stringify(op.example) : undefined);

describe("hostile input never gets a 5xx or a malformed error", () => {
  it("covers the documented operations", () => {
    // The walk below is only as good as its list: every route family must be in it.
    const paths = new Set(operations.map((o) => o.path));
    for (const p of ["/v1/personalize/methods", "/v1/personalize/feedback", "/v1/personalize/feedback/batch", "/v1/personalize/preferences", "/v1/checkout/sessions", "/v1/analytics/timeseries", "/v1/admin/merchants", "/v1/personalize/customers/{customer_id}"]) {
      expect(paths, p).toContain(p);
    }
    expect(operations.filter((o) => o.example).length).toBeGreaterThanOrEqual(5);
  });

  it("query and path parameters", async () => {
    for (const op of operations) {
      for (const param of op.parameters.filter((p) => p.in === "query" && p.name !== "api_key")) {
        for (const value of STRINGS) {
          const url = `${validPath(op.path)}?${new URLSearchParams({ ...(param.name === "customer_id" ? {} : { customer_id: "cus_fuzz" }), [param.name]: value })}`;
          // customer_id is only a parameter of some routes; where it is not, the extra parameter is itself the hostile input.
          await send(op, url, bodyOf(op), `query ${param.name}`);
        }
        await send(op, `${validPath(op.path)}?${param.name}=a&${param.name}=b`, bodyOf(op), `repeated ${param.name}`);
      }
      for (const param of op.parameters.filter((p) => p.in === "path")) {
        for (const value of STRINGS.filter((v) => v !== "")) {
          await send(op, validPath(op.path.replace(`{${param.name}}`, encodeURIComponent(value))), bodyOf(op), `path ${param.name}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("JSON body fields, one at a time, and whole bodies", async () => {
    for (const op of operations.filter((o) => o.method !== "GET" && o.method !== "DELETE")) {
      const url = validPath(op.path);
      for (const raw of BODIES) await send(op, url, raw, `body ${raw.slice(0, 20)}`);
      if (!op.example) continue;
      for (const key of Object.keys(op.example)) {
        const { [key]: _dropped, ...without } = op.example;
        await send(op, url, JSON.stringify(without), `without ${key}`);
        for (const value of VALUES) await send(op, url, JSON.stringify({ ...op.example, [key]: value }), `field ${key}`);
      }
      // Nested fields of the batch feedback body: each event field in turn.
      const events = op.example.events;
      if (Array.isArray(events) && typeof events[0] === "object") {
        for (const key of Object.keys(events[0] as object)) {
          for (const value of VALUES) await send(op, url, JSON.stringify({ ...op.example, events: [{ ...(events[0] as object), [key]: value }] }), `events.0.${key}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("bodies that are not JSON, or not UTF-8", async () => {
    const latin1 = new Uint8Array([...'{"customer_id":"cus_'].map((ch) => ch.charCodeAt(0)).concat([0xe9, 0x22, 0x7d])); // {"customer_id":"cus_é"} in Latin-1
    for (const op of operations.filter((o) => o.method !== "GET" && o.method !== "DELETE")) {
      const headers = new Headers(credentials(op, merchant));
      for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
        headers.set("Content-Type", type);
        const res = await SELF.fetch(`https://api.test${validPath(op.path)}`, { method: op.method, headers, body: bodyOf(op) ?? "{}" });
        expect(res.status, `${op.method} ${op.path} as ${type}`).toBe(415);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe("UNSUPPORTED_MEDIA_TYPE");
      }
      // A charset parameter means nothing for JSON (RFC 8259: UTF-8); bytes that are not UTF-8 are INVALID_JSON, whatever it says.
      headers.set("Content-Type", "application/json; charset=latin1");
      const res = await SELF.fetch(`https://api.test${validPath(op.path)}`, { method: op.method, headers, body: latin1 });
      expect(res.status, `${op.method} ${op.path} Latin-1 body`).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("INVALID_JSON");
    }
  });

  it("every JSON Content-Type the gateway accepts reaches the route as JSON", async () => {
    // Spellings RFC 9110 allows (whitespace before ";", a trailing ";", digits in a +json subtype): the
    // route's validator sees the body and names the unknown field, instead of refusing the media type.
    const body = JSON.stringify({ not_a_field: 1 });
    for (const op of operations.filter((o) => o.method !== "GET")) {
      for (const type of ["application/json ; charset=utf-8", "application/json;", "application/vnd.tap2.v2+json", "application/json;charset=utf-8;"]) {
        const headers = new Headers(credentials(op, merchant));
        headers.set("Content-Type", type);
        const res = await SELF.fetch(`https://api.test${validPath(op.path)}`, { method: op.method, headers, body });
        const error = ((await res.json()) as { error: { code: string; details?: { path: string }[] } }).error;
        expect({ where: `${op.method} ${op.path} as ${type}`, status: res.status, code: error.code, unknown: error.details?.some((d) => d.path === "not_a_field") })
          .toEqual({ where: `${op.method} ${op.path} as ${type}`, status: 400, code: "VALIDATION_ERROR", unknown: true });
      }
    }
  });

  it("no body, an empty one, or body fields on a route that takes none: a 4xx that names the problem", async () => {
    const call = (op: Operation, init: { headers?: Record<string, string>; body?: string }) =>
      SELF.fetch(`https://api.test${validPath(op.path)}?${new URLSearchParams(op.requiredQuery)}`, {
        method: op.method,
        headers: { ...credentials(op, merchant), ...init.headers },
        ...(init.body === undefined ? {} : { body: init.body }),
      });
    const errorOf = async (res: Response) => ((await res.json()) as { error: { code: string; details?: { path: string; message: string }[] } }).error;
    const writes = operations.filter((o) => o.method !== "GET");
    expect(writes.filter((o) => !o.hasBody).length).toBeGreaterThanOrEqual(4); // the DELETEs and the restore
    for (const op of writes) {
      const where = `${op.method} ${op.path}`;
      // (fetch gives a string body, even an empty one, Content-Type text/plain: that is the 415 below.)
      const empties: { headers?: Record<string, string>; body?: string }[] = [{}, { headers: { "Content-Type": "application/json" }, body: "" }, { headers: { "Content-Length": "0" } }];
      for (const init of empties) {
        const res = await call(op, init);
        if (op.method === "PATCH") {
          // Counts as {}: a PATCH that changes nothing.
          expect({ where, init, status: res.status }).toEqual({ where, init, status: 200 });
          await res.body?.cancel();
        } else if (op.hasBody) {
          // Counts as {}: the required fields are named.
          expect({ where, init, status: res.status }).toEqual({ where, init, status: 400 });
          const error = await errorOf(res);
          expect(error.code, where).toBe("VALIDATION_ERROR");
          expect(error.details?.some((d) => d.message === "Required"), where).toBe(true);
        } else {
          expect({ where, init, ok: res.status < 500 && res.status !== 400 && res.status !== 415 }).toEqual({ where, init, ok: true });
          await res.body?.cancel();
        }
      }
      const typed = await call(op, { headers: { "Content-Type": "text/plain" }, body: "" });
      expect({ where, status: typed.status, code: (await errorOf(typed)).code }).toEqual({ where, status: 415, code: "UNSUPPORTED_MEDIA_TYPE" });
      if (op.hasBody) continue;
      const json = { "Content-Type": "application/json" };
      const unknown = await call(op, { headers: json, body: '{"colour":"blue"}' });
      expect({ where, status: unknown.status }).toEqual({ where, status: 400 });
      expect(await errorOf(unknown), where).toMatchObject({ code: "VALIDATION_ERROR", details: [{ path: "colour", message: "Unknown field" }] });
      const array = await call(op, { headers: json, body: "[]" });
      expect({ where, status: array.status }).toEqual({ where, status: 400 });
      await array.body?.cancel();
      if (op.admin) continue;
      // merchant_id may come in the body of a merchant route (API.md §1); it is held to the key's merchant.
      const own = await call(op, { headers: json, body: JSON.stringify({ merchant_id: merchant.merchantId }) });
      expect({ where, ok: own.status < 400 || own.status === 404 }).toEqual({ where, ok: true });
      await own.body?.cancel();
      const other = await call(op, { headers: json, body: '{"merchant_id":"m_someone_else"}' });
      expect({ where, status: other.status, code: (await errorOf(other)).code }).toEqual({ where, status: 403, code: "MERCHANT_MISMATCH" });
    }
  });
});
