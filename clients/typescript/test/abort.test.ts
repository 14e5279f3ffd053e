// Cancelling one call with an AbortSignal (docs/clients.md, "Cancelling a call"): every wrapped method
// takes `{ signal }` in its last argument; aborting throws Tap2Error ABORTED (status 0), whether the
// signal fires before the call, while waiting for the answer, between retries or while the body is read.
import { createServer } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { Tap2Client, Tap2Error } from "../src/index";

const servers: { close(): unknown }[] = [];
afterAll(() => servers.forEach((s) => s.close()));

/** A fetch that never answers, but gives up when its request's signal fires (as every real fetch does). */
function hanging() {
  const requests: Request[] = [];
  const fetch = (request: Request) => {
    requests.push(request);
    return new Promise<Response>((_, reject) => request.signal.addEventListener("abort", () => reject(request.signal.reason)));
  };
  return { fetch, requests };
}

const client = (fetch: (request: Request) => Promise<Response>, extra: Partial<ConstructorParameters<typeof Tap2Client>[0]> = {}) =>
  new Tap2Client({ apiKey: "tp2_sk_test", baseUrl: "http://tap2.test", fetch, ...extra });

/** Every wrapped method, called with `signal`. */
const CALLS: [string, (c: Tap2Client, signal: AbortSignal) => Promise<unknown>][] = [
  ["getMethods", (c, signal) => c.getMethods({ customer_id: "cus_1" }, { signal })],
  ["getOffers", (c, signal) => c.getOffers({ customer_id: "cus_1" }, { signal })],
  ["sendFeedback", (c, signal) => c.sendFeedback({ customer_id: "cus_1", method_id: "visa" }, { signal })],
  ["sendFeedbackBatch", (c, signal) => c.sendFeedbackBatch([{ customer_id: "cus_1", method_id: "visa" }], { idempotencyKey: "k", signal })],
  ["getPreferences", (c, signal) => c.getPreferences("cus_1", { signal })],
  ["putPreferences", (c, signal) => c.putPreferences({ customer_id: "cus_1", favorite_methods: [] }, { signal })],
  ["getConsent", (c, signal) => c.getConsent("cus_1", { merchantId: "m_1", signal })],
  ["createCheckoutSession", (c, signal) => c.createCheckoutSession({ customer_id: "cus_1" }, { signal })],
  ["deleteCustomer", (c, signal) => c.deleteCustomer("cus_1", { signal })],
  ["restoreCustomer", (c, signal) => c.restoreCustomer("cus_1", { signal })],
  ["exportCustomer", (c, signal) => c.exportCustomer("cus_1", { signal })],
  ["getAnalyticsSummary", (c, signal) => c.getAnalyticsSummary({}, { signal })],
  ["getAnalyticsTimeseries", (c, signal) => c.getAnalyticsTimeseries({ metric: "conversion_rate" }, { signal })],
  ["getPaymentMethods", (c, signal) => c.getPaymentMethods({ signal })],
];

async function aborted(promise: Promise<unknown>): Promise<Tap2Error> {
  const err = await promise.catch((e: unknown) => e);
  if (!(err instanceof Tap2Error)) throw new Error(`expected a Tap2Error, got ${String(err)}`);
  return err;
}

describe("cancelling a call with an AbortSignal", () => {
  it.each(CALLS)("%s: aborting while the answer is awaited throws ABORTED at once, with the signal's reason as cause", async (_name, call) => {
    const server = hanging();
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(new Error("user left the page")), 50);
    const err = await aborted(call(client(server.fetch, { timeoutMs: 10_000 }), controller.signal));
    expect(err).toMatchObject({ status: 0, code: "ABORTED", message: "The call was aborted by its AbortSignal" });
    expect((err.cause as Error).message).toBe("user left the page");
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(server.requests).toHaveLength(1);
  });

  it.each(CALLS)("%s: a signal aborted before the call sends nothing", async (_name, call) => {
    const server = hanging();
    const err = await aborted(call(client(server.fetch), AbortSignal.abort()));
    expect([err.status, err.code]).toEqual([0, "ABORTED"]);
    expect(server.requests).toHaveLength(0);
  });

  it("aborting during the wait before a retry stops there: no second request", async () => {
    const requests: string[] = [];
    const limited = async (request: Request) => {
      requests.push(request.url);
      return new Response(JSON.stringify({ error: { code: "RATE_LIMITED", message: "slow down" } }), { status: 429, headers: { "Retry-After": "5" } });
    };
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const started = Date.now();
    const err = await aborted(client(limited, { sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) }).getConsent("cus_1", { signal: controller.signal }));
    expect([err.status, err.code]).toEqual([0, "ABORTED"]);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(requests).toHaveLength(1);
  });

  it("the client's own timeout still applies to a call given a signal (TIMEOUT, not ABORTED)", async () => {
    const err = await aborted(client(hanging().fetch, { timeoutMs: 50, maxRetries: 0 }).getConsent("cus_1", { signal: new AbortController().signal }));
    expect([err.status, err.code]).toEqual([0, "TIMEOUT"]);
  });

  it("aborting while the body trickles in (real sockets) cuts the read", async () => {
    const base = await trickling();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const started = Date.now();
    const err = await aborted(new Tap2Client({ apiKey: "tp2_sk_test", baseUrl: base, timeoutMs: 10_000 }).getConsent("cus_1", { signal: controller.signal }));
    expect([err.status, err.code]).toEqual([0, "ABORTED"]);
    expect(Date.now() - started).toBeLessThan(1_500);
  });
});

/** A server on a free loopback port whose 200 answer's body trickles in, one character every 50 ms (~6.5 s in all). */
function trickling(status = "200 OK"): Promise<string> {
  return new Promise<string>((resolve) => {
    const server = createServer((socket) => {
      socket.on("error", () => {});
      socket.once("data", async () => {
        const body = `{"customer_id":"c","entries":[],"truncated":false}${" ".repeat(80)}`;
        socket.write(`HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
        for (const char of body) {
          if (socket.destroyed) return;
          socket.write(char);
          await new Promise((r) => setTimeout(r, 50));
        }
      });
    });
    servers.push(server);
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as { port: number }).port}`));
  });
}

// docs/clients.md, "tap2.raw": the same Tap2Error as the wrapped methods for every failure without a
// whole answer; error answers come back as openapi-fetch's { error, response }, and no shape is checked.
describe("tap2.raw", () => {
  const rawConsent = (c: Tap2Client, signal?: AbortSignal) => c.raw.GET("/v1/personalize/consent", { params: { query: { customer_id: "cus_1" } }, signal });

  it("throws ABORTED when the signal fired before the call, while the answer is awaited, and during the wait before a retry", async () => {
    const before = hanging();
    expect(await aborted(rawConsent(client(before.fetch), AbortSignal.abort()))).toMatchObject({ status: 0, code: "ABORTED" });
    expect(before.requests).toHaveLength(0);

    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("user left the page")), 50);
    const err = await aborted(rawConsent(client(hanging().fetch), controller.signal));
    expect(err).toMatchObject({ status: 0, code: "ABORTED", message: "The call was aborted by its AbortSignal" });
    expect((err.cause as Error).message).toBe("user left the page");

    const limited = async () => new Response(JSON.stringify({ error: { code: "RATE_LIMITED", message: "slow down" } }), { status: 429, headers: { "Retry-After": "5" } });
    const waiting = new AbortController();
    setTimeout(() => waiting.abort(), 50);
    expect(await aborted(rawConsent(client(limited, { sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) }), waiting.signal))).toMatchObject({ code: "ABORTED" });
  });

  it("throws ABORTED when the signal fires while the body trickles in, a success's or an error's, and TIMEOUT at the client's timeout (real sockets)", async () => {
    for (const status of ["200 OK", "500 Internal Server Error"]) {
      const base = await trickling(status);
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 300);
      const started = Date.now();
      const err = await aborted(rawConsent(new Tap2Client({ apiKey: "tp2_sk_test", baseUrl: base, timeoutMs: 10_000 }), controller.signal));
      expect([status, err.status, err.code]).toEqual([status, 0, "ABORTED"]);
      expect(Date.now() - started).toBeLessThan(1_500);

      const slow = await aborted(rawConsent(new Tap2Client({ apiKey: "tp2_sk_test", baseUrl: await trickling(status), timeoutMs: 300, maxRetries: 0 })));
      expect([status, slow.status, slow.code, slow.message]).toEqual([status, 0, "TIMEOUT", "No answer within 0.3 s"]);
    }
  });

  it("returns an error answer as { error, response } (not thrown), and a success unchecked", async () => {
    const answers = [
      new Response(JSON.stringify({ error: { code: "NOT_FOUND", message: "no such customer" } }), { status: 404, headers: { "Content-Type": "application/json" } }),
      new Response(JSON.stringify({ entries: "not a list" }), { status: 200, headers: { "Content-Type": "application/json" } }),
    ];
    const c = client(async () => answers.shift()!);
    const missing = await rawConsent(c);
    expect([missing.response.status, missing.error]).toEqual([404, { error: { code: "NOT_FOUND", message: "no such customer" } }]);
    expect((await rawConsent(c)).data).toEqual({ entries: "not a list" });
  });
});
