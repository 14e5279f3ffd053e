// Seeding through the public APIs only: merchants and keys through the admin API, payment history
// through the feedback API (the same path production data takes). The merchant configuration is
// the local demo merchant's (scripts/demo-data.mjs), with limits the load cannot reach.
import { DEMO_MERCHANT } from "../../scripts/demo-data.mjs";
import { localSecrets } from "../../scripts/lib/localWorker.mjs";

export const BENCH_SECRETS = localSecrets("bench");

/** Far above anything a bench run sends (limits are per hour; burst caps what one run may spend). */
export const UNREACHABLE_LIMIT = { requests_per_hour: 10_000_000, burst: 1_000_000 };

async function admin(url, method, path, body) {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${BENCH_SECRETS.ADMIN_TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status}: ${text.slice(0, 500)}`);
  return text ? JSON.parse(text) : null;
}

/** Creates a merchant like the demo merchant (holdout 0 so every known customer is scored) and a secret key. */
export async function createBenchMerchant(url, merchantId, overrides = {}) {
  const { methods, allowed_origins, features, offers } = DEMO_MERCHANT.config;
  await admin(url, "POST", "/v1/admin/merchants", {
    merchant_id: merchantId,
    name: `Bench ${merchantId}`,
    tier: "scale",
    methods,
    allowed_origins,
    features,
    offers,
    rate_limit: UNREACHABLE_LIMIT,
    holdout_percent: 0,
    ...overrides,
  });
  const key = await admin(url, "POST", `/v1/admin/merchants/${merchantId}/keys`, { type: "secret" });
  return { merchantId, secretKey: key.key, methods };
}

/** Small deterministic PRNG (mulberry32), so every run seeds the same history. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Methods of the demo merchant that are available to a US / USD shopper. */
export const US_METHODS = ["visa", "mastercard", "amex", "apple_pay", "google_pay", "paypal", "klarna", "affirm"];

/**
 * `customers` × `perCustomer` payments over the last 60 days, each customer with a habitual method
 * (70 %) and the rest spread, shuffled so a batch of 100 touches ~100 different customers, as a
 * merchant backend reporting its recent payments would. Event ids are `ing_<n>`: stored once each.
 */
export function ingestionEvents({ customers, perCustomer, customerId, nowMs = Date.now() }) {
  const rand = rng(7);
  const events = [];
  for (let c = 0; c < customers; c++) {
    const habit = US_METHODS[c % US_METHODS.length];
    for (let k = 0; k < perCustomer; k++) {
      const method_id = rand() < 0.7 ? habit : US_METHODS[Math.floor(rand() * US_METHODS.length)];
      events.push({
        customer_id: customerId(c),
        method_id,
        amount: 500 + Math.floor(rand() * 30_000),
        currency: "USD",
        device_type: rand() < 0.6 ? "mobile" : "desktop",
        location_country: "US",
        occurred_at: new Date(nowMs - Math.floor(rand() * 60 * 24 * 3600 * 1000) - 60_000).toISOString(),
      });
    }
  }
  for (let i = events.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [events[i], events[j]] = [events[j], events[i]];
  }
  return events.map((e, i) => ({ ...e, event_id: `ing_${i}` }));
}
