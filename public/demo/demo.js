// The demo checkout page. It plays a merchant's checkout: its backend (/demo/api/*, local only) opens
// a checkout session; the page reads the order with the drop-in script; "Pay" sends feedback.
const params = new URLSearchParams(location.search);
// Serve the page from one origin and call the API on another — a loopback one only: the page imports
// the drop-in script from there, and /demo/?api=https://elsewhere must not run someone's script.
const apiOverride = loopbackOrigin(params.get("api"));

function loopbackOrigin(value) {
  if (!value) return null;
  try {
    const url = new URL(value);
    return ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname) ? url.origin : null;
  } catch {
    return null;
  }
}
const methods = document.getElementById("methods");
const status = document.getElementById("status");
const payButton = document.getElementById("pay");
const names = new Map([...methods.children].map((b) => [b.dataset.tap2Method, b.textContent]));
const originalOrder = [...methods.children];

/** The page as the merchant built it: what a failed answer must leave, even after an earlier customer's order. */
function restoreOriginalOrder() {
  for (const b of originalOrder) {
    b.removeAttribute("data-tap2-recommended");
    if (b.hasAttribute("data-tap2-hidden")) b.removeAttribute("hidden");
    b.removeAttribute("data-tap2-hidden");
    methods.append(b);
  }
  showConfidences(null);
}

let customers = [];
let current = { customer: null, result: null, selected: null };
let generation = 0;

const setState = (state) => (document.body.dataset.state = state);
const money = (amount, currency) => new Intl.NumberFormat("en-NL", { style: "currency", currency }).format(amount / 100);

async function postJson(path, body) {
  const res = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const json = await res.json().catch(() => null);
  if (!res.ok) throw new Error(json?.error?.message ?? `HTTP ${res.status}`);
  return json;
}

function select(methodId) {
  current.selected = methodId;
  for (const b of methods.children) b.setAttribute("aria-pressed", String(b.dataset.tap2Method === methodId));
  payButton.textContent = methodId ? `Pay with ${names.get(methodId)}` : "Pay";
}

function showConfidences(result) {
  for (const b of methods.children) b.querySelector(".conf")?.remove();
  for (const m of result?.methods ?? []) {
    const b = methods.querySelector(`[data-tap2-method="${m.method_id}"]`);
    if (!b) continue;
    const span = document.createElement("span");
    span.className = "conf";
    span.textContent = m.confidence < 0.005 ? "<1%" : `${Math.round(m.confidence * 100)}%`;
    b.append(span);
  }
}

/** Opens a session for the customer, asks Tap2 for the order and reorders the buttons. */
async function checkout(customerId) {
  const mine = ++generation;
  setState("loading");
  current = { customer: customerId, result: null, selected: null };
  document.body.dataset.customer = customerId;
  const who = customers.find((c) => c.customer_id === customerId);
  document.getElementById("story").textContent = who ? who.story : "";
  for (const b of document.querySelectorAll("#customers button")) b.setAttribute("aria-checked", String(b.dataset.customer === customerId));
  try {
    const session = await postJson("/demo/api/session", { customer: customerId });
    document.getElementById("total").textContent = money(session.amount, session.currency);
    const base = apiOverride ?? session.api_base;
    const { Tap2 } = await import(`${base}/sdk/v1/tap2.js`);
    // Locally the first request warms D1 and KV; a real checkout keeps the 800 ms default.
    const result = await Tap2.rank({ publishableKey: session.publishable_key, clientSecret: session.client_secret, baseUrl: base, timeoutMs: 3000 });
    if (mine !== generation) return;
    Tap2.reorder(methods, result);
    current.result = result;
    showConfidences(result);
    select(result.methods[0]?.method_id ?? null);
    document.body.dataset.decision = result.decision_id;
    status.textContent = result.personalized
      ? `Ordered for ${who?.name ?? customerId}: ${names.get(result.methods[0].method_id)} first.`
      : `Default order (${result.fallback_reason}).`;
    setState("ranked");
  } catch (err) {
    if (mine !== generation) return;
    // The checkout still works without us: the original order, nothing hidden (also after an
    // earlier customer's answer reordered the buttons).
    restoreOriginalOrder();
    status.textContent = `Tap2 unavailable, original order kept (${err.code ?? err.message}).`;
    select(null);
    setState("untouched");
  }
}

async function pay() {
  if (!current.selected || !current.customer) {
    status.textContent = "Choose a payment method first.";
    return;
  }
  payButton.disabled = true;
  const paidWith = current.selected;
  try {
    await postJson("/demo/api/pay", { customer: current.customer, method_id: paidWith, decision_id: current.result?.decision_id });
    status.textContent = `Paid with ${names.get(paidWith)}. Tap2 learns from it in a moment…`;
    setState("paid");
    setTimeout(() => checkout(current.customer), 2000);
  } catch (err) {
    status.textContent = `Payment feedback failed: ${err.message}`;
  } finally {
    payButton.disabled = false;
  }
}

async function start() {
  const res = await fetch("customers.json");
  const demo = await res.json();
  customers = demo.customers;
  document.getElementById("item").textContent = demo.basket.label;
  const bar = document.getElementById("customers");
  for (const c of customers) {
    const b = document.createElement("button");
    b.type = "button";
    b.setAttribute("role", "radio");
    b.dataset.customer = c.customer_id;
    b.textContent = c.name;
    b.addEventListener("click", () => {
      const url = new URL(location.href);
      url.searchParams.set("customer", c.customer_id);
      history.replaceState(null, "", url);
      checkout(c.customer_id);
    });
    bar.append(b);
  }
  methods.addEventListener("click", (e) => {
    const b = e.target.closest("[data-tap2-method]");
    if (b) select(b.dataset.tap2Method);
  });
  payButton.addEventListener("click", pay);
  const wanted = params.get("customer");
  await checkout(customers.some((c) => c.customer_id === wanted) ? wanted : customers[0].customer_id);
}

start().catch((err) => {
  status.textContent = `Demo failed to start: ${err.message}`;
  setState("untouched");
});
