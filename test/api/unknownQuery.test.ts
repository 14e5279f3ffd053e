import { beforeAll, describe, expect, it } from "vitest";
import { API_MD_ROUTES, contractOf } from "../helpers/contract";
import { ADMIN_TOKEN, createMerchant, type ErrorJson, expectError, recordedFetch, type TestMerchant } from "../helpers/fixtures";
import { concretePath, credentials, documentedOperations, type Operation } from "../helpers/operations";

/**
 * API.md §1: "unknown query parameters of a route are rejected (400)", on every route. Driven by the
 * worker's own OpenAPI document (as test/api/robustness.test.ts is), so a route added later is
 * covered without touching this file: each operation is sent once as a valid request (its required
 * query parameters, path parameters and documented body example), then with `?foo=1` added and with
 * a parameter without a name (`=x`) added.
 * The first answer must not be a 400 (the request really is valid); each of the others must be a
 * 400 VALIDATION_ERROR with exactly one detail: `foo` as an unknown field, or the parameter without
 * a name. The answers are also checked against the document after the file (test/helpers/setup.ts),
 * so the 400 must be documented on every operation.
 */

let merchant: TestMerchant;
let operations: Operation[] = [];

beforeAll(async () => {
  merchant = await createMerchant({ rate_limit: { requests_per_hour: 1_000_000, burst: 100_000 } });
  operations = documentedOperations();
});

function send(op: Operation, extra: Record<string, string>): Promise<Response> {
  const headers = new Headers({ "Content-Type": "application/json", ...credentials(op, merchant) });
  const query = new URLSearchParams({ ...op.requiredQuery, ...extra }).toString();
  const init: RequestInit = { method: op.method, headers };
  if (op.example) init.body = JSON.stringify(op.example);
  return recordedFetch(`${concretePath(op.path, merchant, "cus_unknown_query")}${query ? `?${query}` : ""}`, init);
}

const name = (op: Operation) => `${op.method} ${op.path}`;

const NAMELESS = { path: "", message: "Query parameter without a name" };
/** Extra query parameters no route takes, and the one detail each must be answered with. */
const UNKNOWN: [Record<string, string>, unknown[]][] = [
  [{ foo: "1" }, [{ path: "foo", message: "Unknown field" }]],
  [{ "": "x" }, [NAMELESS]], // ?=x (or &=x after the route's own parameters): Hono's parser drops it
];

describe("unknown query parameters are rejected on every documented operation", () => {
  it("the walk covers every route of API.md, admin and self-description included", () => {
    const names = new Set(operations.map(name));
    for (const expected of API_MD_ROUTES) expect(names, expected).toContain(expected);
    expect(operations.length).toBeGreaterThanOrEqual(25);
  });

  it("answers ?foo=1 (and ?=x) with 400 VALIDATION_ERROR naming it, where the same request without it is accepted", async () => {
    const problems: string[] = [];
    for (const op of operations) {
      const valid = await send(op, {});
      const validText = await valid.text();
      if (valid.status === 400 || valid.status >= 500) problems.push(`${name(op)} without foo → ${valid.status} ${validText.slice(0, 200)}`);

      for (const [extra, expected] of UNKNOWN) {
        const res = await send(op, extra);
        const text = await res.text();
        let details: unknown;
        try {
          const body = JSON.parse(text) as ErrorJson;
          details = body.error.code === "VALIDATION_ERROR" ? body.error.details : body.error.code;
        } catch {
          details = text.slice(0, 200);
        }
        if (res.status !== 400 || JSON.stringify(details) !== JSON.stringify(expected)) {
          problems.push(`${name(op)}?${new URLSearchParams(extra).toString()} → ${res.status} ${JSON.stringify(details)}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("a parameter without a name is unknown too, alone or next to others; an empty segment is no parameter", async () => {
    for (const query of ["=x", "&=x", "=", "deep=1&=x", "=x&deep=1", "deep=1&&=&"]) {
      const body = await expectError(await recordedFetch(`/health?${query}`), 400, "VALIDATION_ERROR");
      expect(body.error.details, query).toEqual([NAMELESS]);
    }
    const both = await expectError(await recordedFetch(`/v1/payment-methods?foo=1&=x`, { headers: { "X-API-Key": merchant.secretKey } }), 400, "VALIDATION_ERROR");
    expect(both.error.details).toEqual([{ path: "foo", message: "Unknown field" }, NAMELESS]);
    // `?&`, `&&` and a trailing `&` hold no parameter (URLSearchParams reads none): accepted as before.
    for (const query of ["&", "deep=1&", "&&deep=1"]) expect(`${query} ${(await recordedFetch(`/health?${query}`)).status}`).toBe(`${query} 200`);
    // A name that is only encoded characters is a name: "%20" is " ", unknown like any other.
    const spaced = await expectError(await recordedFetch(`/health?%20=x`), 400, "VALIDATION_ERROR");
    expect(spaced.error.details).toEqual([{ path: " ", message: "Unknown field" }]);
  });
});

describe("api_key on the keyless routes", () => {
  // API.md §1 lets a client pass its key as ?api_key= on merchant routes; a client or monitoring probe
  // that appends it to every URL must not see /health (or the self-description) fail over it.
  const keyless = () => contractOf().operations.filter((op) => JSON.stringify(op.security) === "[]").map((op) => `${op.method} ${op.path}`).sort();

  it("the keyless operations are /health, /v1/openapi.json and /docs", () => {
    expect(keyless()).toEqual(["GET /docs", "GET /health", "GET /v1/openapi.json"]);
  });

  it("accept and ignore api_key, whatever it holds, and still reject any other unknown parameter", async () => {
    for (const value of [merchant.secretKey, merchant.publishableKey, "tp2_sk_revoked_or_made_up", "not-a-key"]) {
      const q = `api_key=${encodeURIComponent(value)}`;
      const health = await recordedFetch(`/health?${q}`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: "ok" });
      const deep = await recordedFetch(`/health?${q}&deep=1`);
      expect(((await deep.json()) as { checks?: unknown }).checks).toBeDefined();
      for (const path of ["/v1/openapi.json", "/docs"]) expect(`${path} ${(await recordedFetch(`${path}?${q}`)).status}`).toBe(`${path} 200`);
    }
    for (const path of ["/health", "/v1/openapi.json", "/docs"]) {
      const res = await recordedFetch(`${path}?api_key=x&foo=1`);
      expect(res.status).toBe(400);
      expect(((await res.json()) as ErrorJson).error.details).toEqual([{ path: "foo", message: "Unknown field" }]);
    }
  });

  it("admin routes still reject it: they take the admin token, and a merchant key there is a mistake", async () => {
    const res = await recordedFetch(`/v1/admin/merchants/${merchant.merchantId}?api_key=${merchant.secretKey}`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorJson).error.details).toEqual([{ path: "api_key", message: "Unknown field" }]);
  });
});
