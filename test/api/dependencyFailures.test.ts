import { env } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createMerchant, recordedFetch, type TestMerchant } from "../helpers/fixtures";
import { concretePath, credentials, documentedOperations, type Operation } from "../helpers/operations";
import { patchD1 } from "../helpers/queryCount";

/**
 * Every documented operation, with a valid request, while one dependency fails: KV reads, KV writes,
 * D1, either queue, the rate limiter's Durable Object. The rule under test (brief, API.md §1): a
 * failing dependency is a degraded answer or `503 UNAVAILABLE` in the contract's error body, never
 * `500`. Driven by the worker's own OpenAPI document, so a route added later is covered too.
 */

const failure = (what: string) => new Error(`${what} failed (injected)`);

/** Makes every D1 statement and batch of this isolate fail, until restored. */
const failD1 = () => patchD1(() => () => Promise.reject(failure("D1_ERROR: Network connection lost; D1")));

const MODES: { name: string; fail: () => (() => void) | void }[] = [
  {
    name: "KV reads",
    fail: () => {
      vi.spyOn(env.CACHE, "get").mockRejectedValue(failure("KV GET"));
    },
  },
  {
    name: "KV writes",
    fail: () => {
      vi.spyOn(env.CACHE, "put").mockRejectedValue(failure("KV PUT"));
      vi.spyOn(env.CACHE, "delete").mockRejectedValue(failure("KV DELETE"));
    },
  },
  { name: "D1", fail: failD1 },
  {
    name: "feedback queue",
    fail: () => {
      vi.spyOn(env.FEEDBACK_QUEUE, "send").mockRejectedValue(failure("Queue send"));
      vi.spyOn(env.FEEDBACK_QUEUE, "sendBatch").mockRejectedValue(failure("Queue sendBatch"));
    },
  },
  {
    name: "analytics queue",
    fail: () => {
      vi.spyOn(env.ANALYTICS_QUEUE, "send").mockRejectedValue(failure("Queue send"));
      vi.spyOn(env.ANALYTICS_QUEUE, "sendBatch").mockRejectedValue(failure("Queue sendBatch"));
    },
  },
  {
    name: "rate limiter",
    fail: () => {
      vi.spyOn(env.RATE_LIMITER, "get").mockImplementation(() => {
        throw failure("Durable Object");
      });
    },
  },
];

let merchant: TestMerchant;
let operations: Operation[] = [];

beforeAll(async () => {
  merchant = await createMerchant({ rate_limit: { requests_per_hour: 10_000_000, burst: 1_000_000 }, features: { targeted_offers: true, cross_merchant: true } });
  operations = documentedOperations();
});
afterEach(() => vi.restoreAllMocks());

async function call(op: Operation): Promise<{ status: number; code: string | null; text: string }> {
  const query = new URLSearchParams({ ...op.requiredQuery, ...(op.requiredQuery.customer_id ? { customer_id: "cus_dep" } : {}) });
  const url = `${concretePath(op.path, merchant, "cus_dep")}${query.size > 0 ? `?${query}` : ""}`;
  const init: RequestInit = { method: op.method, headers: { "Content-Type": "application/json", ...credentials(op, merchant) } };
  if (op.example && op.method !== "GET" && op.method !== "DELETE") {
    // The documented example names its own merchant and customer; this merchant's key needs its own.
    const body: Record<string, unknown> = { ...op.example };
    if ("merchant_id" in body && !op.admin) body.merchant_id = merchant.merchantId;
    if ("customer_id" in body) body.customer_id = "cus_dep";
    init.body = JSON.stringify(body);
  }
  const res = await recordedFetch(url, init);
  const text = await res.text();
  let code: string | null = null;
  try {
    code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? null;
  } catch {
    /* not JSON: a 2xx without a body, or a page */
  }
  return { status: res.status, code, text };
}

describe("a failing dependency is a degraded answer or 503 UNAVAILABLE, never 500", () => {
  it("covers the documented operations", () => {
    expect(operations.length).toBeGreaterThan(20);
  });

  it("503 carries Retry-After; an SQL error (a bug of ours, not an outage) stays 500 INTERNAL_ERROR so it is noticed", async () => {
    const prefs = operations.find((o) => o.method === "GET" && o.path === "/v1/personalize/preferences")!;
    const restore = failD1();
    try {
      const res = await recordedFetch(`/v1/personalize/preferences?customer_id=cus_dep`, { headers: credentials(prefs, merchant) });
      expect(res.status).toBe(503);
      expect(res.headers.get("Retry-After")).toBe("1");
      await res.body?.cancel();
    } finally {
      restore();
    }
    vi.spyOn(env.DB, "batch").mockRejectedValue(new Error("D1_ERROR: no such column: foo: SQLITE_ERROR"));
    vi.spyOn(console, "error").mockImplementation(() => {});
    const bug = await call(prefs);
    expect([bug.status, bug.code]).toEqual([500, "INTERNAL_ERROR"]);
  });

  it("a 500 (a bug of ours) is written at error level through console.error, with where it was thrown and no request data", async () => {
    const prefs = operations.find((o) => o.method === "GET" && o.path === "/v1/personalize/preferences")!;
    vi.spyOn(env.DB, "batch").mockRejectedValue(new Error("D1_ERROR: no such column: foo: SQLITE_ERROR"));
    const written: { via: string; line: Record<string, unknown> }[] = [];
    for (const via of ["log", "info", "warn", "error"] as const) {
      vi.spyOn(console, via).mockImplementation((...args: unknown[]) => void written.push({ via, line: JSON.parse(String(args[0])) as Record<string, unknown> }));
    }
    const res = await recordedFetch(`/v1/personalize/preferences?customer_id=cus_dep_500`, { headers: credentials(prefs, merchant) });
    await res.arrayBuffer();
    vi.restoreAllMocks();
    expect(res.status).toBe(500);
    const mine = written.filter((w) => w.line.request_id === res.headers.get("X-Request-Id") && "status_code" in w.line);
    expect(mine.map((w) => [w.via, w.line.level, w.line.error_code])).toEqual([["error", "error", "INTERNAL_ERROR"]]);
    expect(mine[0]!.line.stack).toMatch(/^at /);
    expect(JSON.stringify(mine[0]!.line)).not.toContain("cus_dep_500");
  });

  for (const mode of MODES) {
    it(`when ${mode.name} fail`, async () => {
      // Warm the isolate's key and merchant memo first, as traffic would have.
      expect((await call(operations.find((o) => o.path === "/v1/payment-methods")!)).status).toBe(200);
      const problems: string[] = [];
      for (const op of operations) {
        const restore = mode.fail();
        let answer;
        try {
          answer = await call(op);
        } finally {
          restore?.();
          vi.restoreAllMocks();
        }
        const ok = answer.status < 500 || (answer.status === 503 && answer.code === "UNAVAILABLE");
        if (!ok) problems.push(`${op.method} ${op.path} → ${answer.status} ${answer.text.slice(0, 160)}`);
      }
      expect(problems).toEqual([]);
    });
  }
});
