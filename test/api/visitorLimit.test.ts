import { env } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { VISITOR_LIMIT, VISITOR_PERIOD_SECONDS, visitorOf } from "../../src/ratelimit/visitor";
import { clearMemo } from "../../src/storage/cachedRead";
import { admin, api, createMerchant, expectError, type TestMerchant } from "../helpers/fixtures";

/**
 * The per-visitor limit of publishable keys (src/middleware/rateLimit.ts, a merchant's
 * `features.visitor_limit`), through the real Workers Rate Limiting binding Miniflare runs from
 * wrangler.toml (120 a minute). Each test uses its own
 * client addresses, so the minute's counters of one test never reach another.
 */
const ORIGIN = "https://shop.example";
const GUEST = "/v1/personalize/methods";

const browser = (m: TestMerchant, ip: string) => api(m.publishableKey, GUEST, { headers: { Origin: ORIGIN, "CF-Connecting-IP": ip } });
const remaining = (res: Response) => Number(res.headers.get("RateLimit-Remaining"));

/**
 * The binding counts in fixed windows of the period (Miniflare: floor(now / 60 s), as the platform's
 * counters do per location), so a run of requests that must land in one window starts early in one:
 * with less than WINDOW_SLACK_MS of the current window left, wait for the next.
 */
const WINDOW_SLACK_MS = 15_000;
async function freshWindow(): Promise<void> {
  const left = VISITOR_PERIOD_SECONDS * 1000 - (Date.now() % (VISITOR_PERIOD_SECONDS * 1000));
  if (left < WINDOW_SLACK_MS) await new Promise((resolve) => setTimeout(resolve, left + 100));
}
/** Per test: two runs of 120 requests and two waits for a fresh window fit. */
const LONG = 75_000;

async function spend(send: () => Promise<Response>, n: number): Promise<Response[]> {
  const out: Response[] = [];
  for (let i = 0; i < n; i++) {
    const res = await send();
    await res.body?.cancel();
    out.push(res);
  }
  return out;
}

describe("visitorOf: the client address a visitor is counted under", () => {
  it("takes IPv4 as is, cuts IPv6 to its /64, unwraps IPv4-mapped addresses, and refuses what is no address", () => {
    expect(visitorOf("203.0.113.7")).toBe("203.0.113.7");
    expect(visitorOf(" 203.0.113.7 ")).toBe("203.0.113.7");
    expect(visitorOf("2001:db8:abcd:12:1:2:3:4")).toBe("2001:db8:abcd:12::/64");
    expect(visitorOf("2001:DB8:ABCD:0012:ffff::1")).toBe("2001:db8:abcd:12::/64");
    expect(visitorOf("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(visitorOf("2001:db8:abcd:12::")).toBe("2001:db8:abcd:12::/64");
    expect(visitorOf("::1")).toBe("0:0:0:0::/64");
    expect(visitorOf("::ffff:198.51.100.4")).toBe("198.51.100.4");
    // Groups after "::" may belong to the first 64 bits: every spelling of one address is one visitor.
    expect(visitorOf("2001::1:2:3:4:5")).toBe("2001:0:0:1::/64");
    expect(visitorOf("2001:0:0:1:2:3:4:5")).toBe("2001:0:0:1::/64");
    expect(visitorOf("2001:0000:0000:0001:0002:0003:0004:0005")).toBe("2001:0:0:1::/64");
    expect(visitorOf("::2:3:4:5:6:7:8")).toBe("0:2:3:4::/64");
    for (const junk of [undefined, "", "  ", "not-an-ip", "1.2.3", "2001:db8", "2001:db8:zz::1", "2001:db8::zz", "1.2.3.4.5", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4::5:6:7:8", "12345::1"]) {
      expect({ junk, v: visitorOf(junk) }).toEqual({ junk, v: null });
    }
  });
});

describe("per-visitor limit of publishable keys", () => {
  it(`lets ${VISITOR_LIMIT} requests a minute through from one visitor, then 429s it without spending the merchant's tokens`, async () => {
    // A token every 3.6 s: the bucket barely refills while the test runs.
    const m = await createMerchant({ rate_limit: { requests_per_hour: 1_000, burst: 1_000 }, features: { visitor_limit: true } });
    await freshWindow();
    const passed = await spend(() => browser(m, "203.0.113.10"), VISITOR_LIMIT);
    expect(passed.map((r) => r.status)).toEqual(passed.map(() => 200));
    const lastRemaining = remaining(passed.at(-1)!);
    expect(lastRemaining).toBeLessThanOrEqual(1_000 - VISITOR_LIMIT + 3);

    const refused = await browser(m, "203.0.113.10");
    const body = await expectError(refused, 429, "RATE_LIMITED");
    expect(body.error.message).toMatch(/publishable key/);
    expect(refused.headers.get("Retry-After")).toBe(String(VISITOR_PERIOD_SECONDS));
    // The merchant bucket's own headers, as it stands: the refused requests took none of its tokens.
    expect(refused.headers.get("RateLimit-Limit")).toBe("1000");
    expect(remaining(refused)).toBeGreaterThanOrEqual(lastRemaining);
    await spend(() => browser(m, "203.0.113.10"), 20);
    const server = await api(m.secretKey, "/v1/payment-methods");
    expect(server.status).toBe(200);
    // 20 more refusals, and the secret key's request took one token (a refill of at most a few meanwhile).
    expect(remaining(server)).toBeGreaterThanOrEqual(lastRemaining - 1);
    expect(remaining(server)).toBeLessThan(lastRemaining + 3);
  }, LONG);

  it("counts each visitor at each merchant apart; secret keys and requests with no client address are not counted", async () => {
    const a = await createMerchant({ rate_limit: { requests_per_hour: 36_000, burst: 1_000 }, features: { visitor_limit: true } });
    const b = await createMerchant({ rate_limit: { requests_per_hour: 36_000, burst: 1_000 }, features: { visitor_limit: true } });
    await freshWindow();
    await spend(() => browser(a, "198.51.100.20"), VISITOR_LIMIT);
    await expectError(await browser(a, "198.51.100.20"), 429, "RATE_LIMITED");
    // Another visitor at the same merchant, the same visitor at another merchant: their own counters.
    expect((await browser(a, "198.51.100.21")).status).toBe(200);
    expect((await browser(b, "198.51.100.20")).status).toBe(200);
    // The same /64 is one visitor; another /64 is not.
    await freshWindow();
    await spend(() => browser(a, "2001:db8:20:1::1"), VISITOR_LIMIT);
    await expectError(await browser(a, "2001:db8:20:1:ffff::2"), 429, "RATE_LIMITED");
    expect((await browser(a, "2001:db8:20:2::1")).status).toBe(200);
    // The merchant's backend behind the same address is limited only by the merchant bucket.
    const server = await spend(() => api(a.secretKey, "/v1/payment-methods", { headers: { "CF-Connecting-IP": "198.51.100.20" } }), 5);
    expect(server.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    // A request that did not come through Cloudflare's edge names no visitor: only the bucket applies.
    expect((await api(a.publishableKey, GUEST, { headers: { Origin: ORIGIN } })).status).toBe(200);
  }, LONG);

  it("is off unless the merchant turns it on (the contract's per-merchant bucket alone), and a PATCH turns it on and off", async () => {
    const m = await createMerchant({ rate_limit: { requests_per_hour: 36_000, burst: 1_000 } });
    const view = await (await admin(`/v1/admin/merchants/${m.merchantId}`)).json<{ features: Record<string, boolean> }>();
    expect(view.features).toEqual({ targeted_offers: false, cross_merchant: false, visitor_limit: false });
    const res = await spend(() => browser(m, "192.0.2.50"), VISITOR_LIMIT + 10);
    expect(res.filter((r) => r.status !== 200)).toEqual([]);

    const on = await admin(`/v1/admin/merchants/${m.merchantId}`, { method: "PATCH", body: JSON.stringify({ features: { visitor_limit: true } }) });
    expect((await on.json<{ features: Record<string, boolean> }>()).features).toEqual({ targeted_offers: false, cross_merchant: false, visitor_limit: true });
    clearMemo(); // this isolate's copy of the config; other isolates see it within 60 s
    await env.CACHE.delete(`merchant:${m.merchantId}`);
    await freshWindow();
    const limited = await spend(() => browser(m, "192.0.2.51"), VISITOR_LIMIT + 1);
    expect(limited.filter((r) => r.status === 429)).toHaveLength(1);
    await expectError(await admin(`/v1/admin/merchants/${m.merchantId}`, { method: "PATCH", body: JSON.stringify({ features: { visitor_limit: "yes" } }) }), 400, "VALIDATION_ERROR");
  }, LONG);

  it("the merchant bucket still applies to a visitor within its own limit; over both, Retry-After is the longer wait", async () => {
    const m = await createMerchant({ rate_limit: { requests_per_hour: 36, burst: 2 }, features: { visitor_limit: true } });
    await freshWindow();
    const res = await spend(() => browser(m, "192.0.2.30"), 3);
    expect(res.map((r) => r.status)).toEqual([200, 200, 429]);
    expect(res[2]!.headers.get("RateLimit-Remaining")).toBe("0");
    expect(Number(res[2]!.headers.get("Retry-After"))).toBeGreaterThan(60); // the bucket's wait (100 s a token), not the visitor's
    // The bucket's refusals count for the visitor too; once over it, the answer still waits for the bucket.
    await spend(() => browser(m, "192.0.2.30"), VISITOR_LIMIT - 3);
    const both = await browser(m, "192.0.2.30");
    const body = await expectError(both, 429, "RATE_LIMITED");
    expect(body.error.message).toMatch(/publishable key/);
    expect(both.headers.get("RateLimit-Remaining")).toBe("0");
    expect(Number(both.headers.get("Retry-After"))).toBeGreaterThan(VISITOR_PERIOD_SECONDS);
    expect(both.headers.get("Retry-After")).toBe(both.headers.get("RateLimit-Reset"));
  }, LONG);

  it("when the bucket cannot be read for a refused visitor, the 429 still carries Retry-After, goes without RateLimit headers, and is logged", async () => {
    const m = await createMerchant({ features: { visitor_limit: true } });
    await freshWindow();
    await spend(() => browser(m, "192.0.2.60"), VISITOR_LIMIT);
    // The real binding, with get() wrapped to hand out a stub whose calls fail as an unreachable object's do.
    const get = vi.spyOn(env.RATE_LIMITER, "get").mockImplementation(
      () => ({ peek: () => Promise.reject(new Error("Durable Object is overloaded")) }) as unknown as ReturnType<typeof env.RATE_LIMITER.get>,
    );
    const errors = vi.spyOn(console, "error");
    const refused = await browser(m, "192.0.2.60");
    await expectError(refused, 429, "RATE_LIMITED");
    expect(refused.headers.get("Retry-After")).toBe(String(VISITOR_PERIOD_SECONDS));
    expect(refused.headers.get("RateLimit-Limit")).toBeNull();
    const line = errors.mock.calls.map((args) => JSON.parse(String(args[0])) as Record<string, unknown>).find((l) => l.metric === "rate_limiter_unavailable");
    expect(line).toMatchObject({ level: "error", mode: "peek", merchant_id: m.merchantId });
    get.mockRestore();
    errors.mockRestore();
  }, LONG);

  it("fails open: when the binding fails, the request goes on to the merchant bucket, logged as an error", async () => {
    const m = await createMerchant({ features: { visitor_limit: true } });
    const limit = vi.spyOn(env.VISITOR_LIMITER, "limit").mockRejectedValue(new Error("rate limiting unavailable"));
    const errors = vi.spyOn(console, "error");
    const res = await browser(m, "192.0.2.40");
    expect(limit).toHaveBeenCalledWith({ key: `${m.merchantId}|192.0.2.40` });
    expect(res.status).toBe(200);
    expect(res.headers.get("RateLimit-Limit")).not.toBeNull();
    const line = errors.mock.calls.map((args) => JSON.parse(String(args[0])) as Record<string, unknown>).find((l) => l.metric === "visitor_limiter_unavailable");
    expect(line).toMatchObject({ level: "error", merchant_id: m.merchantId, error: "Error: rate limiting unavailable" });
    limit.mockRestore();
    errors.mockRestore();
  });
});
