// The local demo merchant and its keys. These keys are public on purpose: they exist only in a
// local `wrangler dev` database seeded by scripts/dev.mjs, never in staging or production.
import { createHash, createHmac } from "node:crypto";

export const DEMO_MERCHANT_ID = "m_demo";
export const DEMO_SECRET_KEY = "tp2_sk_demo_secret_key_for_local_development_only0";
export const DEMO_PUBLISHABLE_KEY = "tp2_pk_demo_publishable_key_for_local_development0";

export const DEMO_MERCHANT = {
  name: "Demo Shop",
  tier: "growth",
  config: {
    methods: ["visa", "mastercard", "amex", "apple_pay", "google_pay", "paypal", "klarna", "affirm", "ideal", "sepa_debit", "bancontact", "pix"],
    allowed_origins: ["http://localhost:8787", "http://127.0.0.1:8787"],
    rate_limit: null,
    holdout_percent: 10,
    features: { targeted_offers: true, cross_merchant: false },
    offers: [
      {
        offer_id: "applepay_5off", method_id: "apple_pay", title: "5% back with Apple Pay",
        description: "Pay with Apple Pay and get 5% back.", discount_type: "percent", discount_value: 5,
      },
      {
        offer_id: "klarna_0apr", method_id: "klarna", title: "Pay in 4 with Klarna, 0% interest, $5 off",
        description: "Split baskets over $50 into four interest-free payments and save $5.", discount_type: "fixed", discount_value: 500, min_amount: 5000, currency: "USD",
      },
    ],
    scoring_weights: {},
  },
};

export const sha256Hex = (text) => createHash("sha256").update(text).digest("hex");

/** Same pseudonym as src/crypto/pseudonym.ts (HMAC-SHA-256 under PII_KEY, base64url, "c_" prefix). */
export const customerRef = (piiKey, customerId) =>
  "c_" + createHmac("sha256", piiKey).update("customer:" + customerId).digest("base64url");

const q = (v) => (v === null || v === undefined ? "NULL" : typeof v === "number" ? String(v) : `'${String(v).replace(/'/g, "''")}'`);

export const DEMO_KEYS = [
  ["key_demo_secret", DEMO_SECRET_KEY, "secret"],
  ["key_demo_publishable", DEMO_PUBLISHABLE_KEY, "publishable"],
];

/**
 * Idempotent SQL that seeds the demo merchant and its two keys, and re-activates a revoked demo key:
 * the banner prints these fixed keys and the demo backend (src/routes/demo.ts) uses them, so every
 * start must leave them working. Re-activated keys come back as rows with a `reactivated_demo_key`.
 */
export function demoSeedSql(now = new Date().toISOString()) {
  const m = DEMO_MERCHANT;
  return [
    `INSERT INTO merchants (id, name, tier, config, created_at, updated_at) VALUES (${q(DEMO_MERCHANT_ID)}, ${q(m.name)}, ${q(m.tier)}, ${q(JSON.stringify(m.config))}, ${q(now)}, ${q(now)}) ON CONFLICT (id) DO NOTHING;`,
    ...DEMO_KEYS.flatMap(([id, key, type]) => [
      `INSERT INTO api_keys (key_id, merchant_id, key_hash, type, prefix, created_at) VALUES (${q(id)}, ${q(DEMO_MERCHANT_ID)}, ${q(sha256Hex(key))}, ${q(type)}, ${q(key.slice(0, 11))}, ${q(now)}) ON CONFLICT DO NOTHING;`,
      `UPDATE api_keys SET revoked_at = NULL WHERE key_id = ${q(id)} AND key_hash = ${q(sha256Hex(key))} AND revoked_at IS NOT NULL RETURNING key_id AS reactivated_demo_key, key_hash;`,
    ]),
  ].join("\n");
}

/** The KV entry src/storage/apiKeys.ts caches a key's record under (revoked, it is trusted 45 s). */
export const keyCacheKey = (keyHash) => `api_key:${keyHash}`;

export { q as sqlLiteral };
