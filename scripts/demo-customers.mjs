// Demo customers of the local demo merchant (m_demo), with payment histories different enough that
// the demo checkout visibly reorders. The list lives in public/demo/customers.json, which the demo
// page reads too. scripts/local-setup.mjs appends extraSeedSql() to its seed file.
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { customerRef, DEMO_MERCHANT_ID, sqlLiteral as q } from "./demo-data.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
export const DEMO = JSON.parse(readFileSync(`${root}public/demo/customers.json`, "utf8"));

/** Mirrors src/personalization/recency.ts and buckets.ts (the consumer stores events the same way). */
const RECENCY_EPOCH_MS = Date.UTC(2026, 0, 1);
const RECENCY_HALF_LIFE_MS = 30 * 24 * 3600 * 1000;
const recencyRef = (ms) => 2 ** ((ms - RECENCY_EPOCH_MS) / RECENCY_HALF_LIFE_MS);
const MINOR_UNITS = JSON.parse(readFileSync(`${root}src/catalog/minor-units.json`, "utf8"));
function amountBand(amount, currency) {
  const normalized = amount * 10 ** (2 - (typeof MINOR_UNITS[currency] === "number" ? MINOR_UNITS[currency] : 2));
  const band = [2_000, 10_000, 50_000].findIndex((upper) => normalized < upper);
  return band === -1 ? 3 : band;
}

/** PII_KEY of the local worker: .dev.vars, or the example it is copied from. */
export function localPiiKey(dir = root) {
  for (const file of [".dev.vars", ".dev.vars.example"]) {
    if (!existsSync(`${dir}${file}`)) continue;
    const m = /^\s*PII_KEY\s*=\s*"?([^"\n]*)"?\s*$/m.exec(readFileSync(`${dir}${file}`, "utf8"));
    if (m) return m[1].trim();
  }
  throw new Error("No PII_KEY in .dev.vars or .dev.vars.example");
}

/**
 * Idempotent SQL seeding the demo customers' payments into usage_events. Event ids and times are
 * fixed (spread back from `now` by day), so a re-run inserts nothing and the aggregate trigger of
 * migrations/0002 counts each payment exactly once. A demo customer with a customer_deletions row
 * (pending or purged) is not seeded: an erasure stays an erasure locally too, until the customer is
 * restored. Such customers come back as rows with an `erased_demo_customer`.
 */
export function extraSeedSql({ piiKey = localPiiKey(), now = Date.now() } = {}) {
  const day = 24 * 3600 * 1000;
  const today = Math.floor(now / day) * day;
  const rows = [erasedDemoCustomersSql(piiKey)];
  for (const customer of DEMO.customers) {
    const ref = customerRef(piiKey, customer.customer_id);
    const notErased = `NOT EXISTS (SELECT 1 FROM customer_deletions WHERE merchant_id = ${q(DEMO_MERCHANT_ID)} AND customer_ref = ${q(ref)})`;
    let n = 0;
    for (const h of customer.history) {
      for (let i = 0; i < h.count; i++) {
        n += 1;
        // Every third day back from yesterday, interleaving the customer's habits.
        const at = new Date(today - (n * 3 - 1) * day + 12 * 3600 * 1000).toISOString();
        const currency = DEMO.basket.currency;
        const values = [
          DEMO_MERCHANT_ID, `demo_${customer.customer_id}_${n}`, ref, h.method_id, h.amount, currency, h.device_type,
          DEMO.basket.country, amountBand(h.amount, currency), recencyRef(Date.parse(at)), at, at,
        ];
        rows.push(
          `INSERT INTO usage_events (merchant_id, event_id, customer_ref, method_id, amount, currency, device_type, location_country, amount_band, recency_ref, occurred_at, received_at) SELECT ${values.map(q).join(", ")} WHERE ${notErased} ON CONFLICT (merchant_id, event_id) DO NOTHING;`,
        );
      }
    }
  }
  return rows.join("\n");
}

/** The demo customers that have a customer_deletions row, by customer id, with its status. */
function erasedDemoCustomersSql(piiKey) {
  const refs = DEMO.customers.map((c) => [c.customer_id, customerRef(piiKey, c.customer_id)]);
  const idOf = refs.map(([id, ref]) => `WHEN ${q(ref)} THEN ${q(id)}`).join(" ");
  return `SELECT CASE customer_ref ${idOf} END AS erased_demo_customer, status FROM customer_deletions WHERE merchant_id = ${q(DEMO_MERCHANT_ID)} AND customer_ref IN (${refs.map(([, ref]) => q(ref)).join(", ")});`;
}
