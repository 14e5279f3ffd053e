/* global document -- the page.evaluate and waitForFunction callbacks run in the browser */
// The demo checkout in real Chromium (`npm run test:browser`): the drop-in script, checkout
// sessions, CORS and the feedback loop end to end against `wrangler dev`.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { DEMO_MERCHANT_ID, DEMO_PUBLISHABLE_KEY, DEMO_SECRET_KEY } from "../../scripts/demo-data.mjs";
import { CHROMIUM, launchChromium, startForeignServer, startWorker } from "./harness.mjs";

const root = fileURLToPath(new URL("../../", import.meta.url));
const SCREENSHOT = `${root}docs/demo-checkout.png`;
const DEMO = JSON.parse(readFileSync(`${root}public/demo/customers.json`, "utf8"));
const ORIGINAL_ORDER = [...readFileSync(`${root}public/demo/index.html`, "utf8").matchAll(/data-tap2-method="([a-z0-9_]+)"/g)].map((m) => m[1]);

if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);

let worker;
let foreign;
let browser;
let pageOrigin;

before(async () => {
  worker = await startWorker();
  // The page is served by the worker from its own origin, and talks to the API on the worker's other
  // loopback name, so every API call is a real cross-origin request from an allowed origin.
  pageOrigin = `http://localhost:${worker.port}`;
  const patch = await fetch(`${worker.base}/v1/admin/merchants/${DEMO_MERCHANT_ID}`, {
    method: "PATCH",
    headers: { Authorization: `Bearer ${worker.adminToken}`, "Content-Type": "application/json" },
    body: JSON.stringify({ allowed_origins: ["http://localhost:8787", "http://127.0.0.1:8787", pageOrigin] }),
  });
  assert.equal(patch.status, 200, await patch.text());
  foreign = await startForeignServer(`${root}public`, worker.base);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await foreign?.stop();
  await worker?.stop();
});

/** A page that records script errors and the API's answers. */
async function openPage() {
  const context = await browser.newContext({ viewport: { width: 900, height: 600 } });
  const page = await context.newPage();
  const errors = [];
  const api = { asked: 0, failed: 0 };
  page.on("pageerror", (err) => errors.push(err));
  page.on("request", (req) => req.url().includes("/v1/personalize/methods") && (api.asked += 1));
  // A response the browser withholds from the page (no CORS grant) surfaces as a failed request.
  page.on("requestfailed", (req) => req.url().includes("/v1/personalize/methods") && (api.failed += 1));
  return { page, errors, api, close: () => context.close() };
}

const demoUrl = (origin, customer) => `${origin}/demo/?api=${encodeURIComponent(worker.base)}${customer ? `&customer=${customer}` : ""}`;

async function waitForState(page, states, customer) {
  await page.waitForFunction(
    ([s, c]) => s.includes(document.body.dataset.state) && (!c || document.body.dataset.customer === c),
    [states, customer],
    { timeout: 15_000 },
  );
  return page.evaluate(() => document.body.dataset.state);
}

/** The payment buttons as the shopper sees them: visible ones, top to bottom. */
function visibleOrder(page) {
  return page.$$eval("#methods [data-tap2-method]", (els) => els.filter((e) => !e.hidden).map((e) => e.dataset.tap2Method));
}

/** What the API answers the merchant's backend for that customer in the page's context. */
async function expectedOrder(customer) {
  const q = new URLSearchParams({ customer_id: customer, device_type: "desktop", amount: String(DEMO.basket.amount), currency: DEMO.basket.currency, country: DEMO.basket.country });
  const res = await fetch(`${worker.base}/v1/personalize/methods?${q}`, { headers: { "X-API-Key": DEMO_SECRET_KEY } });
  assert.equal(res.status, 200);
  return (await res.json()).methods.map((m) => m.method_id);
}

describe("demo checkout in Chromium", () => {
  it("serves the demo page and the versioned drop-in script with long-lived caching", async () => {
    const page = await fetch(`${worker.base}/demo/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /data-tap2-method="visa"/);
    const sdk = await fetch(`${worker.base}/sdk/v1/tap2.js`);
    assert.equal(sdk.status, 200);
    assert.match(sdk.headers.get("content-type") ?? "", /javascript/);
    assert.match(sdk.headers.get("cache-control") ?? "", /max-age=(\d{6,})/);
    assert.equal(sdk.headers.get("access-control-allow-origin"), "*");
    assert.equal(await sdk.text(), readFileSync(`${root}public/sdk/v1/tap2.js`, "utf8"));
  });

  it("orders the buttons for each demo customer, and switching customers changes the order", async () => {
    const { page, errors, close } = await openPage();
    try {
      await page.goto(demoUrl(pageOrigin));
      const orders = new Map();
      for (const customer of DEMO.customers) {
        await page.click(`#customers [data-customer="${customer.customer_id}"]`);
        assert.equal(await waitForState(page, ["ranked"], customer.customer_id), "ranked");
        const shown = await visibleOrder(page);
        assert.deepEqual(shown, await expectedOrder(customer.customer_id), `order for ${customer.customer_id}`);
        const recommended = await page.$$eval("#methods [data-tap2-recommended]", (els) => els.map((e) => e.dataset.tap2Method));
        assert.deepEqual(recommended, [shown[0]]);
        // Methods the basket rules out (Affirm: US only; Bancontact: BE; Pix: BRL) are hidden.
        for (const hidden of ["affirm", "bancontact", "pix"]) assert.ok(!shown.includes(hidden), `${hidden} hidden`);
        orders.set(customer.customer_id, shown);
      }
      assert.equal(orders.get("cus_alice")[0], "apple_pay");
      assert.equal(orders.get("cus_bram")[0], "ideal");
      assert.equal(orders.get("cus_chloe")[0], "klarna");
      assert.equal(new Set([...orders.values()].map((o) => o.join())).size, orders.size, "every customer gets a different order");

      await page.click('#customers [data-customer="cus_alice"]');
      await waitForState(page, ["ranked"], "cus_alice");
      mkdirSync(`${root}docs`, { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });

  it("learns from a payment: after paying, the paid method leads on reload", async () => {
    const { page, errors, close } = await openPage();
    try {
      await page.goto(demoUrl(pageOrigin, "cus_nina"));
      await waitForState(page, ["ranked"], "cus_nina");
      const before = await visibleOrder(page);
      const method = before.find((m, i) => i > 0 && m === "sepa_debit") ?? before[before.length - 1];
      assert.notEqual(before[0], method);
      await page.click(`#methods [data-tap2-method="${method}"]`);
      await page.click("#pay");
      await waitForState(page, ["paid"], "cus_nina");

      // The feedback goes through the queue: reload until the consumer has stored it.
      let first;
      for (let i = 0; i < 30 && first !== method; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        await page.goto(demoUrl(pageOrigin, "cus_nina"));
        await waitForState(page, ["ranked"], "cus_nina");
        first = (await visibleOrder(page))[0];
      }
      assert.equal(first, method);
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });

  it("leaves a page on an origin that is not allowed in its original order, without a script error", async () => {
    const { page, errors, api, close } = await openPage();
    try {
      await page.goto(demoUrl(foreign.origin, "cus_alice"));
      assert.equal(await waitForState(page, ["untouched", "ranked"], "cus_alice"), "untouched");
      assert.deepEqual(await visibleOrder(page), ORIGINAL_ORDER);
      assert.equal(await page.$$eval("#methods [data-tap2-recommended], #methods [hidden]", (els) => els.length), 0);
      assert.deepEqual(api, { asked: 1, failed: 1 });
      assert.match(await page.textContent("#status"), /original order kept/);
      assert.deepEqual(errors, []);
      // What the API told that origin, which the browser kept from the page: 403 and no CORS grant.
      const res = await fetch(`${worker.base}/v1/personalize/methods`, { headers: { Origin: foreign.origin, "X-API-Key": DEMO_PUBLISHABLE_KEY } });
      assert.equal(res.status, 403);
      assert.equal((await res.json()).error.code, "ORIGIN_NOT_ALLOWED");
      assert.equal(res.headers.get("access-control-allow-origin"), null);
    } finally {
      await close();
    }
  });

  it("puts the original order back when a later answer fails after an earlier customer's order was shown", async () => {
    const { page, errors, close } = await openPage();
    try {
      await page.goto(demoUrl(pageOrigin, "cus_alice"));
      await waitForState(page, ["ranked"], "cus_alice");
      assert.notDeepEqual(await visibleOrder(page), ORIGINAL_ORDER, "Alice's order differs from the page's own");
      // The network drops the next /methods call (Tap2 unreachable), then the shopper switches customer.
      await page.route("**/v1/personalize/methods**", (route) => route.abort("connectionrefused"));
      await page.click('#customers button[data-customer="cus_nina"]');
      await waitForState(page, ["untouched"], "cus_nina");
      assert.deepEqual(await visibleOrder(page), ORIGINAL_ORDER);
      assert.equal(await page.$$eval("#methods [data-tap2-recommended], #methods [hidden], #methods .conf", (els) => els.length), 0);
      assert.match(await page.textContent("#status"), /original order kept/);
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });

  it("ignores an ?api= that is not a loopback origin (the page would import its script from there)", async () => {
    const { page, errors, close } = await openPage();
    try {
      const hosts = new Set();
      page.on("request", (req) => hosts.add(new URL(req.url()).hostname));
      await page.goto(`${pageOrigin}/demo/?api=${encodeURIComponent("https://evil.example")}&customer=cus_alice`);
      await waitForState(page, ["ranked", "untouched"], "cus_alice");
      assert.equal(hosts.has("evil.example"), false);
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });

  it("gives up after the timeout and never touches the page (drop-in script on its own)", async () => {
    const { page, errors, close } = await openPage();
    try {
      await page.goto(`${foreign.origin}/demo/customers.json`);
      const outcome = await page.evaluate(async ([sdk, hang]) => {
        const { Tap2 } = await import(sdk);
        document.body.innerHTML = '<div id="m"><button data-tap2-method="visa">V</button><button data-tap2-method="paypal">P</button></div>';
        const started = performance.now();
        const result = await Tap2.personalize(document.getElementById("m"), { publishableKey: "tp2_pk_x", baseUrl: hang, timeoutMs: 300 });
        const elapsed = performance.now() - started;
        const timeouts = [];
        for (const timeoutMs of [250, 1500]) {
          await Tap2.rank({ publishableKey: "tp2_pk_x", baseUrl: hang, timeoutMs }).catch((e) => timeouts.push([e.code, e.status, e.message]));
        }
        return { result, elapsed, timeouts, html: document.getElementById("m").innerHTML };
      }, [`${worker.base}/sdk/v1/tap2.js`, `${foreign.origin}/hang`]);
      assert.equal(outcome.result, null);
      // The wording of the TypeScript, Python and PHP clients (seconds, up to 3 decimals).
      assert.deepEqual(outcome.timeouts, [
        ["TIMEOUT", 0, "No answer within 0.25 s"],
        ["TIMEOUT", 0, "No answer within 1.5 s"],
      ]);
      assert.ok(outcome.elapsed >= 250 && outcome.elapsed < 2000, `gave up after ${outcome.elapsed} ms`);
      assert.equal(outcome.html, '<button data-tap2-method="visa">V</button><button data-tap2-method="paypal">P</button>');
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });

  it("personalize() answers null when it left the page as it was (no container, no button of an answered method), so no decision_id of an unseen order reaches feedback; reorder() takes an answer naming a method twice", async () => {
    const { page, errors, close } = await openPage();
    try {
      await page.goto(`${pageOrigin}/demo/customers.json`); // an allowed origin
      const out = await page.evaluate(async ([sdk, base, key]) => {
        const { Tap2 } = await import(sdk);
        const options = { publishableKey: key, baseUrl: base };
        document.body.innerHTML = '<div id="m"><button data-tap2-method="no_such_method">X</button></div><div id="ok"><button data-tap2-method="visa">V</button><button data-tap2-method="paypal">P</button></div>';
        const missing = await Tap2.personalize(null, options);
        const noMatch = await Tap2.personalize(document.getElementById("m"), options);
        const shown = await Tap2.personalize(document.getElementById("ok"), options);
        const twice = Tap2.reorder(document.getElementById("ok"), { decision_id: "dec_x", methods: [{ method_id: "paypal" }, { method_id: "visa" }, { method_id: "paypal" }] });
        const order = [...document.querySelectorAll("#ok [data-tap2-method]")].map((e) => e.dataset.tap2Method);
        return { missing, noMatch, shown: typeof shown?.decision_id, twice, order, html: document.getElementById("m").innerHTML };
      }, [`${worker.base}/sdk/v1/tap2.js`, worker.base, DEMO_PUBLISHABLE_KEY]);
      assert.deepEqual(out, { missing: null, noMatch: null, shown: "string", twice: true, order: ["paypal", "visa"], html: '<button data-tap2-method="no_such_method">X</button>' });
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });

  it("a timeoutMs beyond what setTimeout holds (Infinity, 2^31 ms) waits for the answer instead of timing out at once", async () => {
    const { page, errors, close } = await openPage();
    try {
      await page.goto(`${pageOrigin}/demo/customers.json`); // an allowed origin
      const outcomes = await page.evaluate(async ([sdk, base, key]) => {
        const { Tap2 } = await import(sdk);
        const out = [];
        for (const timeoutMs of [Infinity, 2 ** 31, 1e12]) {
          out.push(await Tap2.rank({ publishableKey: key, baseUrl: base, timeoutMs }).then((r) => `ok:${r.fallback_reason}`, (e) => `${e.code}:${e.status}`));
        }
        return out;
      }, [`${worker.base}/sdk/v1/tap2.js`, worker.base, DEMO_PUBLISHABLE_KEY]);
      assert.deepEqual(outcomes, ["ok:guest", "ok:guest", "ok:guest"]);
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });

  it("rank() rejects an answer that is not the API's (an HTML page, an error without the API's error object) with BAD_RESPONSE, and the API's errors with their code", async () => {
    const { page, errors, close } = await openPage();
    try {
      await page.goto(`${pageOrigin}/demo/customers.json`); // an allowed origin
      const replies = {
        html200: { status: 200, contentType: "text/html", body: "<html>Error 1101</html>" },
        html502: { status: 502, contentType: "text/html", body: "<html>502 Bad Gateway</html>" },
        json502: { status: 502, contentType: "application/json", body: "{}" },
        json200: { status: 200, contentType: "application/json", body: '{"ok":true}' },
      };
      await page.route("**/v1/personalize/methods**", (route) => {
        const kind = new URL(route.request().url()).searchParams.get("reply");
        const reply = replies[kind];
        if (!reply) return route.continue();
        return route.fulfill({ ...reply, headers: { "Access-Control-Allow-Origin": "*" } });
      });
      const codes = await page.evaluate(async ([sdk, base, key]) => {
        const { Tap2 } = await import(sdk);
        const out = [];
        for (const reply of ["html200", "html502", "json502", "json200"]) {
          out.push(await Tap2.rank({ publishableKey: key, baseUrl: base, context: { reply } }).then(() => "resolved", (e) => `${e.code}:${e.status}`));
        }
        // The API's own error: its code (a currency that is not ISO 4217).
        out.push(await Tap2.rank({ publishableKey: key, baseUrl: base, context: { currency: "XXXX" } }).then(() => "resolved", (e) => `${e.code}:${e.status}`));
        return out;
      }, [`${worker.base}/sdk/v1/tap2.js`, worker.base, DEMO_PUBLISHABLE_KEY]);
      assert.deepEqual(codes, ["BAD_RESPONSE:200", "BAD_RESPONSE:502", "BAD_RESPONSE:502", "BAD_RESPONSE:200", "VALIDATION_ERROR:400"]);
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });

  it("reorders in place: other children keep their places, left-out methods are hidden, re-ranking undoes its own hiding", async () => {
    const { page, errors, close } = await openPage();
    try {
      await page.goto(`${foreign.origin}/demo/customers.json`);
      const steps = await page.evaluate(async (sdk) => {
        const { Tap2 } = await import(sdk);
        document.body.innerHTML =
          '<div id="m"><h3>Pay</h3><button data-tap2-method="visa"></button><button data-tap2-method="paypal"></button><hr><button data-tap2-method="klarna" hidden></button><button data-tap2-method="ideal"></button></div>';
        const m = document.getElementById("m");
        const snap = () => [...m.children].map((e) => (e.dataset.tap2Method ?? e.tagName.toLowerCase()) + (e.hidden ? "(hidden)" : "") + (e.hasAttribute("data-tap2-recommended") ? "*" : ""));
        const answer = (ids) => ({ methods: ids.map((id) => ({ method_id: id, confidence: 0.1, score: 100 })), decision_id: "dec_x", personalized: true });
        const out = [];
        out.push(Tap2.reorder(m, answer(["ideal", "visa", "unknown"])), snap());
        out.push(Tap2.reorder(m, answer(["paypal", "visa", "ideal"])), snap());
        out.push(Tap2.reorder(m, answer(["nothing_here"])), snap());
        out.push(Tap2.reorder(m, null), snap());
        // Two buttons of one method move together, in page order; neither is hidden.
        m.innerHTML = '<button data-tap2-method="visa" id="v1"></button><button data-tap2-method="paypal"></button><button data-tap2-method="visa" id="v2"></button>';
        const ids = () => [...m.children].map((e) => (e.id || e.dataset.tap2Method) + (e.hidden ? "(hidden)" : "") + (e.hasAttribute("data-tap2-recommended") ? "*" : ""));
        out.push(Tap2.reorder(m, answer(["paypal", "visa"])), ids());
        out.push(Tap2.reorder(m, answer(["visa", "paypal"])), ids());
        return out;
      }, `${worker.base}/sdk/v1/tap2.js`);
      assert.deepEqual(steps, [
        true, ["h3", "ideal*", "visa", "hr", "paypal(hidden)", "klarna(hidden)"],
        // paypal was hidden by us and comes back; klarna was hidden by the page and stays hidden.
        true, ["h3", "paypal*", "visa", "hr", "ideal", "klarna(hidden)"],
        false, ["h3", "paypal*", "visa", "hr", "ideal", "klarna(hidden)"],
        false, ["h3", "paypal*", "visa", "hr", "ideal", "klarna(hidden)"],
        true, ["paypal*", "v1", "v2"],
        true, ["v1*", "v2*", "paypal"],
      ]);
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });
  it("refuses a secret key given as publishableKey without sending it, and personalize() says so in the console", async () => {
    const { page, errors, api, close } = await openPage();
    const logged = [];
    page.on("console", (msg) => msg.type() === "error" && logged.push(msg.text()));
    try {
      await page.goto(`${pageOrigin}/demo/customers.json`); // an allowed origin
      const out = await page.evaluate(async ([sdk, base, key]) => {
        const { Tap2 } = await import(sdk);
        document.body.innerHTML = '<div id="m"><button data-tap2-method="visa">V</button><button data-tap2-method="paypal">P</button></div>';
        const code = await Tap2.rank({ publishableKey: key, baseUrl: base }).then(() => "resolved", (e) => `${e.code}:${e.status}`);
        const result = await Tap2.personalize(document.getElementById("m"), { publishableKey: key, baseUrl: base });
        return { code, result, html: document.getElementById("m").innerHTML };
      }, [`${worker.base}/sdk/v1/tap2.js`, worker.base, DEMO_SECRET_KEY]);
      assert.deepEqual(out, { code: "SECRET_KEY:0", result: null, html: '<button data-tap2-method="visa">V</button><button data-tap2-method="paypal">P</button>' });
      assert.equal(api.asked, 0, "the secret key never left the page");
      // Exactly once: from personalize(), which swallows the error; rank() leaves it to its caller.
      assert.equal(logged.filter((text) => /secret key \(tp2_sk_…\) was given as publishableKey; it was not sent/.test(text)).length, 1, logged.join("\n"));
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });

  it("publishes the build as an immutable pinned release whose integrity an import map enforces: the real file runs, a changed one is refused", async () => {
    const manifest = await (await fetch(`${worker.base}/sdk/integrity.json`)).json();
    assert.deepEqual(manifest, JSON.parse(readFileSync(`${root}public/sdk/integrity.json`, "utf8")));
    const url = `${worker.base}${manifest.latest}`;
    const integrity = manifest.releases[manifest.latest];
    const file = await fetch(url);
    assert.equal(file.status, 200);
    assert.equal(file.headers.get("cache-control"), "public, max-age=31536000, immutable");
    assert.equal(file.headers.get("access-control-allow-origin"), "*");
    const body = await file.text();
    assert.equal(body, readFileSync(`${root}public/sdk/v1/tap2.js`, "utf8"), "the latest release is the current build");
    assert.equal(`sha384-${createHash("sha384").update(body).digest("base64")}`, integrity);

    const { page, errors, close } = await openPage();
    try {
      // On the foreign origin (not allowed by the merchant): what is tested is the script's loading.
      const html = `<!doctype html><script type="importmap">${JSON.stringify({ imports: { tap2: url }, integrity: { [url]: integrity } })}</script>
        <script type="module">
          import("tap2").then(({ Tap2 }) => (document.body.dataset.state = "ran:" + typeof Tap2.personalize), () => (document.body.dataset.state = "refused"));
        </script>`;
      const pageUrl = `${foreign.origin}/echo?html=${encodeURIComponent(html)}`;
      let served = 0;
      let tamper = false;
      // A CDN or proxy that changed one byte of the release on its way to the page.
      await page.route(url, async (route) => {
        served += 1;
        const res = await route.fetch();
        const text = await res.text();
        const changed = text.replace("Tap2", "Tap3");
        assert.notEqual(changed, text);
        return route.fulfill({ response: res, body: tamper ? changed : text });
      });
      await page.goto(pageUrl);
      assert.equal(await waitForState(page, ["ran:function", "refused"]), "ran:function");
      tamper = true;
      await page.goto(`${pageUrl}&again`);
      assert.equal(await waitForState(page, ["ran:function", "refused"]), "refused");
      assert.ok(served >= 2, "the release was fetched each time, tampered the second");
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });
});
