import { describe, expect, it } from "vitest";
import { Tap2Client, Tap2Error } from "../src/index";
import { parseRetryAfter } from "../src/errors";
import { retryDelayMs } from "../src/retry";

/** A scripted server: answers in order, records every request it got (bodies read as text). */
function scripted(answers: (() => Response)[]) {
  const requests: { url: string; headers: Headers; body: string }[] = [];
  const fetch = async (request: Request) => {
    requests.push({ url: request.url, headers: request.headers, body: await request.text() });
    const next = answers.shift();
    if (!next) throw new Error("no more scripted answers");
    return next();
  };
  return { fetch, requests };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) => () =>
  new Response(status === 204 ? null : JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
const errorBody = (code: string) => ({ error: { code, message: code.toLowerCase(), request_id: "req_test", documentation_url: "x" } });

function client(fetch: (r: Request) => Promise<Response>, sleeps: number[], extra: Partial<ConstructorParameters<typeof Tap2Client>[0]> = {}) {
  return new Tap2Client({
    apiKey: "tp2_sk_test",
    baseUrl: "http://tap2.test/",
    fetch,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    ...extra,
  });
}

describe("retries (scripted server)", () => {
  it("waits Retry-After seconds after a 429 and resends the same feedback body and event_id", async () => {
    const server = scripted([json(429, errorBody("RATE_LIMITED"), { "Retry-After": "2" }), json(204, null)]);
    const sleeps: number[] = [];
    const { eventId } = await client(server.fetch, sleeps).sendFeedback({ customer_id: "cus_1", method_id: "visa" });
    expect(sleeps).toEqual([2000]);
    expect(server.requests).toHaveLength(2);
    expect(server.requests[0]!.body).toBe(server.requests[1]!.body);
    expect(JSON.parse(server.requests[0]!.body).event_id).toBe(eventId);
    expect(eventId).toMatch(/^evt_[0-9a-f]{32}$/);
    expect(server.requests[0]!.headers.get("X-API-Key")).toBe("tp2_sk_test");
    expect(server.requests[0]!.url).toBe("http://tap2.test/v1/personalize/feedback");
  });

  it("keeps the caller's event_id", async () => {
    const server = scripted([json(204, null)]);
    const { eventId } = await client(server.fetch, []).sendFeedback({ customer_id: "cus_1", method_id: "visa", event_id: "order_42" });
    expect(eventId).toBe("order_42");
    expect(JSON.parse(server.requests[0]!.body).event_id).toBe("order_42");
  });

  it("backs off exponentially on 503 without Retry-After, then gives up after maxRetries with the last error", async () => {
    const server = scripted([0, 1, 2].map(() => json(503, errorBody("UNAVAILABLE"))));
    const sleeps: number[] = [];
    const batch = client(server.fetch, sleeps, { maxRetries: 2, retryBaseDelayMs: 100 }).sendFeedbackBatch([{ customer_id: "c", method_id: "visa" }]);
    const err = await batch.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Tap2Error);
    expect(err).toMatchObject({ status: 503, code: "UNAVAILABLE", requestId: "req_test" });
    expect(server.requests).toHaveLength(3);
    const keys = server.requests.map((r) => r.headers.get("Idempotency-Key"));
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(/^batch_[0-9a-f]{32}$/);
    expect(sleeps).toHaveLength(2);
    expect(sleeps[0]).toBeGreaterThanOrEqual(50);
    expect(sleeps[0]).toBeLessThanOrEqual(100);
    expect(sleeps[1]).toBeGreaterThanOrEqual(100);
    expect(sleeps[1]).toBeLessThanOrEqual(200);
  });

  it("sends a POST without Idempotency-Key once after a 503 (restore may have committed: a resend answers 404), but resends it after a 429", async () => {
    const unavailable = scripted([json(503, errorBody("UNAVAILABLE"), { "Retry-After": "1" }), json(404, errorBody("NOT_FOUND"))]);
    await expect(client(unavailable.fetch, []).restoreCustomer("cus_1")).rejects.toMatchObject({ status: 503, code: "UNAVAILABLE" });
    expect(unavailable.requests).toHaveLength(1);

    // Feedback without an event_id (possible through `raw`) would get a new id from the server on each try.
    const anonymous = scripted([json(503, errorBody("UNAVAILABLE"), { "Retry-After": "0" })]);
    const { response } = await client(anonymous.fetch, []).raw.POST("/v1/personalize/feedback", { body: { customer_id: "cus_1", method_id: "visa" } });
    expect([response.status, anonymous.requests.length]).toEqual([503, 1]);

    const limited = scripted([json(429, errorBody("RATE_LIMITED"), { "Retry-After": "1" }), json(200, { customer_id: "cus_1", status: "active" })]);
    expect(await client(limited.fetch, []).restoreCustomer("cus_1")).toEqual({ customer_id: "cus_1", status: "active" });
    expect(limited.requests).toHaveLength(2);
  });

  it("resends after a 503 what is safe to repeat: feedback with its event_id, a checkout session under its Idempotency-Key, a GET, a DELETE", async () => {
    const again = () => [json(503, errorBody("UNAVAILABLE"), { "Retry-After": "0" })];
    const feedback = scripted([...again(), json(204, null)]);
    await client(feedback.fetch, []).sendFeedback({ customer_id: "cus_1", method_id: "visa" });
    expect(feedback.requests.map((r) => JSON.parse(r.body).event_id)).toEqual([expect.stringMatching(/^evt_/), JSON.parse(feedback.requests[0]!.body).event_id]);

    const session = scripted([...again(), json(201, { id: "cs_1", client_secret: "cs_1_secret" })]);
    await client(session.fetch, []).createCheckoutSession({ customer_id: "cus_1" }, { idempotencyKey: "order_7" });
    expect(session.requests.map((r) => r.headers.get("Idempotency-Key"))).toEqual(["order_7", "order_7"]);

    const read = scripted([...again(), json(200, { customer_id: "cus_1", entries: [], truncated: false })]);
    await client(read.fetch, []).getConsent("cus_1");
    expect(read.requests).toHaveLength(2);

    const erase = scripted([...again(), json(202, { customer_id: "cus_1", status: "pending_deletion", purge_after: "2026-01-01T00:00:00Z" })]);
    await client(erase.fetch, []).deleteCustomer("cus_1");
    expect(erase.requests).toHaveLength(2);
  });

  it("does not retry other errors, and does not wait out a Retry-After beyond maxRetryDelayMs", async () => {
    const bad = scripted([json(400, errorBody("VALIDATION_ERROR"))]);
    await expect(client(bad.fetch, []).getPreferences("cus_1")).rejects.toMatchObject({ status: 400, code: "VALIDATION_ERROR" });
    expect(bad.requests).toHaveLength(1);

    const sleeps: number[] = [];
    const slow = scripted([json(429, errorBody("RATE_LIMITED"), { "Retry-After": "3600" })]);
    const err = await client(slow.fetch, sleeps, { maxRetryDelayMs: 5_000 }).getPreferences("cus_1").catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 429, code: "RATE_LIMITED", retryAfterSeconds: 3600 });
    expect(sleeps).toEqual([]);
  });

  it("turns a timeout into Tap2Error TIMEOUT and an unreachable host into NETWORK_ERROR", async () => {
    const never = (request: Request) =>
      new Promise<Response>((_, reject) => request.signal.addEventListener("abort", () => reject(request.signal.reason)));
    await expect(client(never, [], { timeoutMs: 50 }).getConsent("cus_1")).rejects.toMatchObject({ status: 0, code: "TIMEOUT" });
    const down = async () => {
      throw new TypeError("fetch failed");
    };
    await expect(client(down, []).getConsent("cus_1")).rejects.toMatchObject({ status: 0, code: "NETWORK_ERROR" });
  });

  it("a failed lookup, as Node's fetch reports it (no name, or no DNS server answering), is NETWORK_ERROR \"could not resolve the host name\"", async () => {
    for (const code of ["ENOTFOUND", "EAI_AGAIN"]) {
      const cause = Object.assign(new Error(`getaddrinfo ${code} api.tap2.test`), { errno: -3008, code, syscall: "getaddrinfo", hostname: "api.tap2.test" });
      const lookupFailed = async () => {
        throw new TypeError("fetch failed", { cause });
      };
      const err = await client(lookupFailed, []).getConsent("cus_1").catch((e: unknown) => e);
      expect([code, err]).toMatchObject([code, { status: 0, code: "NETWORK_ERROR", message: "Request failed: could not resolve the host name" }]);
      expect((err as Tap2Error).cause).toBeInstanceOf(TypeError);
    }
  });

  it("a success whose body is not JSON is INVALID_RESPONSE with its status and request id (an answer did arrive); JSON answers pass through", async () => {
    const html = () => new Response("<html>maintenance</html>", { status: 200, headers: { "Content-Type": "text/html", "X-Request-Id": "req_html" } });
    const { fetch } = scripted([html, json(200, { customer_id: "cus_1", entries: [], truncated: false })]);
    const c = client(fetch, []);
    await expect(c.getConsent("cus_1")).rejects.toMatchObject({ status: 200, code: "INVALID_RESPONSE", requestId: "req_html" });
    expect(await c.getConsent("cus_1")).toMatchObject({ customer_id: "cus_1", entries: [] });
  });

  it("never follows a redirect (it would carry the key to another host): every attempt is sent with redirect \"manual\" and a 3xx is refused", async () => {
    const modes: string[] = [];
    const fetch = async (request: Request) => {
      modes.push(request.redirect);
      return json(503, errorBody("UNAVAILABLE"), { "Retry-After": "0" })();
    };
    await expect(client(fetch, [], { maxRetries: 1 }).getConsent("cus_1")).rejects.toMatchObject({ status: 503 });
    expect(modes).toEqual(["manual", "manual"]); // not "error": Cloudflare Workers' fetch throws on it

    for (const status of [301, 302, 307, 308]) {
      const moved = scripted([() => new Response(null, { status, headers: { Location: "https://elsewhere.example/steal", "X-Request-Id": "req_moved" } })]);
      await expect(client(moved.fetch, [], { maxRetries: 2 }).sendFeedback({ customer_id: "cus_1", method_id: "visa" })).rejects.toMatchObject({
        status,
        code: "REDIRECT",
        message: "Refused a redirect (the API never redirects: check the base URL)",
        requestId: "req_moved",
      });
      expect(moved.requests).toHaveLength(1);
    }
    // A browser hands back an opaque "opaqueredirect" (status 0, no headers) for redirect "manual".
    const opaque = () => Object.defineProperties(new Response(null), { type: { value: "opaqueredirect" }, status: { value: 0 }, ok: { value: false } });
    await expect(client(scripted([opaque]).fetch, []).getConsent("cus_1")).rejects.toMatchObject({ status: 0, code: "REDIRECT", message: "Refused a redirect (the API never redirects: check the base URL)" });
  });

  it("a header value with a line break or NUL (a caller's Idempotency-Key, the key) is refused before anything is sent, with a TypeError, not a Tap2Error", async () => {
    const { fetch, requests } = scripted([]);
    for (const key of ["a\nb", "a\r\nX-Evil: 1", "a\0b"]) {
      const batch = await client(fetch, []).sendFeedbackBatch([{ customer_id: "cus_1", method_id: "visa" }], { idempotencyKey: key }).catch((e: unknown) => e);
      const session = await client(fetch, []).createCheckoutSession({ customer_id: "cus_1" }, { idempotencyKey: key }).catch((e: unknown) => e);
      for (const err of [batch, session]) {
        expect(err).toBeInstanceOf(TypeError);
        expect((err as Error).message).toBe("The Idempotency-Key header cannot hold a line break or NUL");
      }
      expect(() => new Tap2Client({ apiKey: `tp2_sk_${key}`, fetch })).toThrow(new TypeError("The X-API-Key header cannot hold a line break or NUL"));
    }
    expect(requests).toHaveLength(0);
  });

  // The same table is in the Python (test_retry.py) and PHP (retry_test.php) tests.
  const HEADER_TEXT_REFUSED = ["ключ", "café", "€1", "a\u00a0b", "a\u0001b", "a\u001bb", "a\u007fb"];
  const HEADER_TEXT_SENT = ["order #1001 /x?%&=", "a\tb", "~!@$^*()[]{}|\\\"'`<>,;:+"];
  it("a header value with a control character or a character outside ASCII (ключ, café, €) is refused before anything is sent, with a TypeError; visible ASCII, space and tab are sent as given", async () => {
    const { fetch, requests } = scripted(HEADER_TEXT_SENT.flatMap(() => [json(202, { accepted: 1 }), json(201, { client_secret: "cs_x_secret_y" })]));
    for (const key of HEADER_TEXT_REFUSED) {
      const batch = await client(fetch, []).sendFeedbackBatch([{ customer_id: "cus_1", method_id: "visa" }], { idempotencyKey: key }).catch((e: unknown) => e);
      const session = await client(fetch, []).createCheckoutSession({ customer_id: "cus_1" }, { idempotencyKey: key }).catch((e: unknown) => e);
      for (const err of [batch, session]) {
        expect(err, JSON.stringify(key)).toBeInstanceOf(TypeError);
        expect((err as Error).message).toBe("The Idempotency-Key header cannot hold a control character or a character outside ASCII");
      }
      expect(() => new Tap2Client({ apiKey: `tp2_sk_${key}`, fetch })).toThrow(new TypeError("The X-API-Key header cannot hold a control character or a character outside ASCII"));
    }
    expect(requests).toHaveLength(0);
    for (const key of HEADER_TEXT_SENT) {
      await client(fetch, []).sendFeedbackBatch([{ customer_id: "cus_1", method_id: "visa" }], { idempotencyKey: key });
      await client(fetch, []).createCheckoutSession({ customer_id: "cus_1" }, { idempotencyKey: key });
    }
    expect(requests.map((r) => r.headers.get("Idempotency-Key"))).toEqual(HEADER_TEXT_SENT.flatMap((key) => [key, key]));
  });

  it("computes jittered exponential delays, and Retry-After overrides them", () => {
    expect(retryDelayMs(0, null, 200, () => 0)).toBe(100);
    expect(retryDelayMs(3, null, 200, () => 1)).toBe(1600);
    expect(retryDelayMs(5, 1.5, 200)).toBe(1500);
  });

  // The same vectors are in the Python (test_retry.py) and PHP (retry_test.php) tests.
  const NOW_MS = Date.UTC(2026, 0, 1); // Thu, 01 Jan 2026 00:00:00 GMT
  it("reads only the HTTP-date forms of RFC 9110 §5.6.7 (IMF-fixdate, RFC 850, asctime, all UTC)", () => {
    const valid: [string, number][] = [
      ["Thu, 01 Jan 2026 00:00:10 GMT", 10],
      ["  Thu, 01 Jan 2026 00:00:10 GMT\t", 10],
      ["Thursday, 01-Jan-26 00:00:10 GMT", 10],
      ["Friday, 01-Jan-27 00:00:00 GMT", 365 * 86_400],
      ["Friday, 01-Jan-99 00:00:00 GMT", 0], // 1999, not 2099 (more than 50 years ahead)
      ["Thu Jan  1 00:00:10 2026", 10],
      ["Thu Jan 01 00:00:10 2026", 10],
      ["Sun, 06 Nov 1994 08:49:37 GMT", 0],
      ["Sat, 29 Feb 2028 00:00:00 GMT", (365 + 365 + 31 + 28) * 86_400],
    ];
    for (const [value, seconds] of valid) expect([value, parseRetryAfter(value, NOW_MS)]).toEqual([value, seconds]);
    const invalid = [
      "tomorrow", "+1 week", "next monday", "now", "Jan 1 2030", "2026-01-01T00:00:10Z", "thu, 01 Jan 2026 00:00:10 GMT",
      "Thu, 01 Jan 2026 00:00:10 +0000", "Thu, 01 Jan 2026 00:00:10 UTC", "Thu, 01 Jan 2026 00:00:10", "Thu, 1 Jan 2026 00:00:10 GMT",
      "Thu,  01 Jan 2026 00:00:10 GMT", "Thu, 31 Feb 2026 00:00:10 GMT", "Thu, 29 Feb 2026 00:00:10 GMT", "Thu, 01 Jan 2026 24:00:00 GMT",
      "Thu, 01 Jan 26 00:00:10 GMT", "Thursday, 01-Jan-2026 00:00:10 GMT", "Thu Jan 1 00:00:10 2026", "Thu Jan  1 00:00:10 2026 GMT",
      "Thu, 01 Jan 2026 00:00:10 GMT\n",
    ];
    for (const value of invalid) expect([value, parseRetryAfter(value, NOW_MS)]).toEqual([value, null]);
  });

  it("a Retry-After that is not an HTTP-date (\"tomorrow\") is absent: the client backs off", async () => {
    const server = scripted([json(429, errorBody("RATE_LIMITED"), { "Retry-After": "tomorrow" }), json(200, { customer_id: "cus_1", entries: [], truncated: false })]);
    const sleeps: number[] = [];
    await client(server.fetch, sleeps, { retryBaseDelayMs: 100 }).getConsent("cus_1");
    expect(sleeps).toHaveLength(1);
    expect(sleeps[0]).toBeGreaterThanOrEqual(50);
    expect(sleeps[0]).toBeLessThanOrEqual(100);
  });

  it("reads delta-seconds only as digits (optionally a fraction), and caps a huge Retry-After at 2^31 s", () => {
    const valid: [string, number][] = [
      ["0", 0], ["3", 3], ["  3\t", 3], ["1.5", 1.5], ["007", 7], ["2147483648", 2 ** 31], ["2147483649", 2 ** 31],
      ["9".repeat(400), 2 ** 31], ["Fri, 31 Dec 9999 23:59:59 GMT", 2 ** 31],
    ];
    for (const [value, seconds] of valid) expect([value, parseRetryAfter(value, NOW_MS)]).toEqual([value, seconds]);
    const invalid = ["", " ", "nan", "NaN", "inf", "Infinity", "-Infinity", "-1", "-0", "+5", "1e400", "1e3", "1E3", "0x10", "1.", ".5", "1,5", "5 s", "5s", "1_000", "\u0663"];
    for (const value of invalid) expect([value, parseRetryAfter(value, NOW_MS)]).toEqual([value, null]);
  });

  it("an unreadable Retry-After (nan, inf, -1, 1e400) is absent: the client backs off; a huge one is raised at once, capped", async () => {
    for (const value of ["nan", "inf", "-1", "1e400"]) {
      const server = scripted([json(429, errorBody("RATE_LIMITED"), { "Retry-After": value }), json(200, { customer_id: "cus_1", entries: [], truncated: false })]);
      const sleeps: number[] = [];
      await client(server.fetch, sleeps, { retryBaseDelayMs: 100 }).getConsent("cus_1");
      expect([value, sleeps.length, sleeps[0]! >= 50 && sleeps[0]! <= 100]).toEqual([value, 1, true]);
    }
    const sleeps: number[] = [];
    const huge = scripted([json(429, errorBody("RATE_LIMITED"), { "Retry-After": "9".repeat(400) })]);
    const err = await client(huge.fetch, sleeps).getConsent("cus_1").catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 429, code: "RATE_LIMITED", retryAfterSeconds: 2 ** 31 });
    expect([sleeps, huge.requests.length]).toEqual([[], 1]);
  });
});
