// fetch against raw sockets (no worker): what docs/clients.md promises of every attempt — the
// timeout bounds headers and body, a proxy's page is HTTP_<status>, a body cut short NETWORK_ERROR.
import { createServer, type Socket } from "node:net";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, describe, expect, it } from "vitest";
import { Tap2Client, Tap2Error } from "../src/index";

const servers: { close(): unknown }[] = [];
afterAll(() => servers.forEach((s) => s.close()));
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A server on a free loopback port handing each connection, once its request arrived, to `handler`. */
function serve(handler: (socket: Socket) => void | Promise<void>): Promise<string> {
  return new Promise((resolve) => {
    const server = createServer((socket) => {
      socket.on("error", () => {});
      socket.once("data", () => void handler(socket));
    });
    servers.push(server);
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as { port: number }).port}`));
  });
}

async function failure(baseUrl: string, timeoutMs: number): Promise<{ err: Tap2Error; ms: number }> {
  const started = Date.now();
  const err = await new Tap2Client({ apiKey: "tp2_sk_test", baseUrl, timeoutMs, maxRetries: 0 }).getConsent("cus_1").catch((e: unknown) => e);
  if (!(err instanceof Tap2Error)) throw new Error(`expected a Tap2Error, got ${String(err)}`);
  return { err, ms: Date.now() - started };
}

describe("transport (raw sockets)", () => {
  it("cuts headers that trickle in at the attempt's timeout", async () => {
    const base = await serve(async (socket) => {
      socket.write("HTTP/1.1 200 OK\r\n");
      for (let i = 0; i < 8 && !socket.destroyed; i++) {
        await pause(500); // a header line every 0.5 s: 4 s in all, never a second of silence
        socket.write(`X-Slow-${i}: x\r\n`);
      }
    });
    const { err, ms } = await failure(base, 1_000);
    expect([err.status, err.code]).toEqual([0, "TIMEOUT"]);
    expect(ms).toBeLessThan(1_500);
  });

  it("cuts a body that trickles in at the attempt's timeout, a success's and an error's", async () => {
    for (const status of ["200 OK", "500 Internal Server Error"]) {
      const base = await serve(async (socket) => {
        const body = `{"customer_id":"c","entries":[],"truncated":false}${" ".repeat(60)}`;
        socket.write(`HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
        for (const char of body) {
          if (socket.destroyed) return;
          socket.write(char); // ~5.5 s in all
          await pause(50);
        }
      });
      const { err, ms } = await failure(base, 1_000);
      expect([err.status, err.code]).toEqual([0, "TIMEOUT"]);
      expect(ms).toBeLessThan(1_500);
    }
  });

  it("the timeout and the caller's abort still end a wait for headers or a trickling body after a garbage collection, for the wrapped methods and raw", async () => {
    // Node's fetch (undici) follows a Request's signal through a WeakRef: a collected Request would
    // leave the body read unbounded. gc() as --expose-gc gives it, switched on here.
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const trickling = () =>
      serve(async (socket) => {
        const body = `{"customer_id":"c","entries":[],"truncated":false}${" ".repeat(40)}`;
        socket.write(`HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
        for (const char of body) {
          if (socket.destroyed) return;
          socket.write(char); // ~4.5 s in all
          await pause(50);
        }
      });
    const silent = () => serve(() => {}); // never a header
    const collecting = setInterval(gc, 50);
    try {
      for (const [raw, server] of [[false, trickling], [true, trickling], [false, silent], [true, silent]] as const) {
        const tap2 = new Tap2Client({ apiKey: "tp2_sk_test", baseUrl: await server(), timeoutMs: 500, maxRetries: 0 });
        const controller = new AbortController();
        const abortable = new Tap2Client({ apiKey: "tp2_sk_test", baseUrl: await server(), timeoutMs: 10_000, maxRetries: 0 });
        setTimeout(() => controller.abort(), 500);
        const calls = raw
          ? [tap2.raw.GET("/v1/personalize/consent", { params: { query: { customer_id: "c" } } }), abortable.raw.GET("/v1/personalize/consent", { params: { query: { customer_id: "c" } }, signal: controller.signal })]
          : [tap2.getConsent("c"), abortable.getConsent("c", { signal: controller.signal })];
        const started = Date.now();
        const outcomes = await Promise.all(calls.map((call) => call.then(() => "answered", (e: unknown) => (e instanceof Tap2Error ? e.code : String(e)))));
        expect([raw, server.name, outcomes]).toEqual([raw, server.name, ["TIMEOUT", "ABORTED"]]);
        expect(Date.now() - started).toBeLessThan(1_500);
      }
    } finally {
      clearInterval(collecting);
    }
  });

  it("a proxy's non-JSON 502 or empty 504, the connection then closed, is HTTP_<status>, the same message as the Python and PHP clients", async () => {
    const page = "<html><body><h1>502 Bad Gateway</h1></body></html>";
    const bad = await serve(async (socket) => {
      socket.write("HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n");
      await pause(100);
      socket.end(page);
    });
    expect((await failure(bad, 2_000)).err).toMatchObject({ status: 502, code: "HTTP_502", message: "HTTP 502 (the answer is not an API error body)", requestId: null });
    const gone = await serve((socket) => socket.end("HTTP/1.1 504 Gateway Timeout\r\nX-Request-Id: req_edge\r\nContent-Length: 0\r\n\r\n"));
    expect((await failure(gone, 2_000)).err).toMatchObject({ status: 504, code: "HTTP_504", requestId: "req_edge" });
  });

  // The same statuses, code and message are in the Python (test_transport.py) and PHP (retry_test.php) tests.
  it("does not follow a 301, 302, 307 or 308, GET or POST: REDIRECT with its status, the same message as the Python and PHP clients, and the host it names gets nothing", async () => {
    let asked = 0;
    const elsewhere = await serve((socket) => {
      asked += 1;
      socket.end("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
    });
    for (const status of [301, 302, 307, 308]) {
      const moved = await serve((socket) => socket.end(`HTTP/1.1 ${status} Moved\r\nLocation: ${elsewhere}/steal\r\nX-Request-Id: req_moved\r\nContent-Length: 0\r\n\r\n`));
      const expected = { status, code: "REDIRECT", message: "Refused a redirect (the API never redirects: check the base URL)", requestId: "req_moved" };
      expect((await failure(moved, 2_000)).err).toMatchObject(expected);
      const tap2 = new Tap2Client({ apiKey: "tp2_sk_test", baseUrl: moved, maxRetries: 2 });
      await expect(tap2.sendFeedback({ customer_id: "cus_1", method_id: "visa" })).rejects.toMatchObject(expected);
    }
    await pause(100);
    expect(asked).toBe(0);
  });

  it("a body cut short is NETWORK_ERROR with status 0; an answer read until close is an answer", async () => {
    const cut = await serve((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"entries":'));
    expect((await failure(cut, 2_000)).err).toMatchObject({ status: 0, code: "NETWORK_ERROR" });
    const whole = await serve(async (socket) => {
      socket.write("HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n");
      await pause(100);
      socket.end('{"customer_id":"cus_1","entries":[],"truncated":false}');
    });
    const tap2 = new Tap2Client({ apiKey: "tp2_sk_test", baseUrl: whole, maxRetries: 0 });
    expect(await tap2.getConsent("cus_1")).toEqual({ customer_id: "cus_1", entries: [], truncated: false });
  });

  /**
   * A host name no resolver can look up, and none asks a DNS server about: its first label is 64
   * octets, one more than a DNS query can carry (RFC 1035 §2.3.4), so getaddrinfo fails at once
   * (ENOTFOUND) without sending a packet, with or without DNS on the machine; and `.invalid`
   * (RFC 6761) would not resolve anyway. The Python and PHP tests use the same name.
   */
  const UNRESOLVABLE = `http://${"a".repeat(64)}.invalid`;

  // The same failures, codes and messages are in the Python (test_transport.py) and PHP (retry_test.php) tests.
  it("says the same code and message as the Python and PHP clients for the same failure", async () => {
    const refused = await serve(() => {});
    servers.pop()!.close();
    const silent = await serve(() => {});
    const closed = await serve((socket) => socket.destroy());
    const cut = await serve((socket) => socket.end("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"entries\":"));
    const garbage = await serve((socket) => socket.end("garbage\r\n\r\n"));
    const cases: [string, number, string, string][] = [
      [silent, 250, "TIMEOUT", "No answer within 0.25 s"],
      [silent, 1_000, "TIMEOUT", "No answer within 1 s"],
      [refused, 2_000, "NETWORK_ERROR", "Request failed: could not connect to the server"],
      [UNRESOLVABLE, 2_000, "NETWORK_ERROR", "Request failed: could not resolve the host name"],
      [closed, 2_000, "NETWORK_ERROR", "Request failed: the connection closed before the whole answer arrived"],
      [cut, 2_000, "NETWORK_ERROR", "Request failed: the connection closed before the whole answer arrived"],
      [garbage, 2_000, "NETWORK_ERROR", "Request failed: the answer is not valid HTTP"],
    ];
    for (const [base, timeoutMs, code, message] of cases) {
      const { err } = await failure(base, timeoutMs);
      expect([base, err.status, err.code, err.message]).toEqual([base, 0, code, message]);
    }
  });
});
