// What only the wire shows: requests written byte by byte to a real `wrangler dev` (workerd's HTTP
// parser), which SELF.fetch in the workerd tests skips. Runs in node (npm run test:scripts).
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { localSecrets, startLocalWorker } from "../../scripts/lib/localWorker.mjs";

const SECRETS = localSecrets("wire-test");
let worker;
let key;

/** One HTTP/1.1 request whose header block is sent as Latin-1 bytes (what node's fetch and http refuse to send). */
function rawRequest(method, path, headers, body = "") {
  const url = new URL(worker.baseUrl);
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(body, "utf8");
    const lines = [`${method} ${path} HTTP/1.1`, `Host: ${url.host}`, "Connection: close", "Content-Type: application/json", `Content-Length: ${payload.length}`];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    const head = Buffer.from(lines.join("\r\n") + "\r\n\r\n", "latin1");
    const socket = connect(Number(url.port), url.hostname, () => socket.write(Buffer.concat([head, payload])));
    const chunks = [];
    socket.on("data", (c) => chunks.push(c));
    socket.on("error", reject);
    socket.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const split = text.indexOf("\r\n\r\n");
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
      const rest = text.slice(split + 4);
      // A chunked body (no Content-Length): one chunk is enough for these small answers.
      const json = /transfer-encoding: chunked/i.test(text.slice(0, split)) ? rest.slice(rest.indexOf("\r\n") + 2, rest.lastIndexOf("\r\n0\r\n")) : rest;
      resolve({ status, body: json ? JSON.parse(json) : null });
    });
  });
}

const admin = (path, body) =>
  fetch(`${worker.baseUrl}${path}`, { method: "POST", headers: { Authorization: `Bearer ${SECRETS.ADMIN_TOKEN}`, "Content-Type": "application/json" }, body: JSON.stringify(body) });

before(async () => {
  worker = await startLocalWorker({ vars: SECRETS });
  assert.equal((await admin("/v1/admin/merchants", { merchant_id: "m_wire", name: "Wire", tier: "growth", methods: ["visa", "paypal"] })).status, 201);
  key = (await (await admin("/v1/admin/merchants/m_wire/keys", { type: "secret" })).json()).key;
});
after(() => worker?.stop());

describe("an Idempotency-Key outside ASCII", () => {
  // workerd decodes header bytes as UTF-8, each byte that is not UTF-8 as U+FFFD: sent in Latin-1,
  // `payé` and `payè` both arrive as `pay\uFFFD`, so the second payment was dropped as a retry of the
  // first (204, never stored) and the second checkout answered with the first's session.
  const routes = [
    ["/v1/personalize/feedback", (method) => ({ customer_id: "cus_wire", method_id: method })],
    ["/v1/personalize/feedback/batch", (method) => ({ events: [{ customer_id: "cus_wire", method_id: method }] })],
    ["/v1/checkout/sessions", () => ({ customer_id: "cus_wire" })],
  ];
  for (const [path, body] of routes) {
    it(`in Latin-1 bytes is a 400 naming the header on ${path}`, async () => {
      for (const [idem, method] of [["pay\u00e9", "visa"], ["pay\u00e8", "paypal"]]) {
        const res = await rawRequest("POST", path, { "X-API-Key": key, "Idempotency-Key": idem }, JSON.stringify(body(method)));
        assert.equal(res.status, 400, JSON.stringify(res.body));
        assert.equal(res.body.error.code, "VALIDATION_ERROR");
        assert.match(res.body.error.message, /^idempotency-key: holds bytes that are not UTF-8/);
      }
    });
  }

  it("in UTF-8 is the key as sent: two such keys are two payments, each stored under its own id", async () => {
    for (const [idem, method] of [["заказ-é", "visa"], ["заказ-è", "paypal"]]) {
      const res = await rawRequest("POST", "/v1/personalize/feedback", { "X-API-Key": key, "Idempotency-Key": Buffer.from(idem, "utf8").toString("latin1") }, JSON.stringify({ customer_id: "cus_utf8", method_id: method }));
      assert.equal(res.status, 204, JSON.stringify(res.body));
    }
    let events = [];
    for (let waited = 0; events.length < 2 && waited < 20_000; waited += 250) {
      await new Promise((r) => setTimeout(r, 250));
      events = (await (await fetch(`${worker.baseUrl}/v1/personalize/customers/cus_utf8/export`, { headers: { "X-API-Key": key } })).json()).usage_events;
    }
    assert.deepEqual(events.map((e) => [e.event_id, e.method_id]).sort(), [["заказ-è", "paypal"], ["заказ-é", "visa"]]);
  });
});
