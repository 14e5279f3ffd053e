import { env } from "cloudflare:test";
import { customerRef } from "../../src/crypto/pseudonym";
import { amountBand } from "../../src/personalization/buckets";
import { recencyRef } from "../../src/personalization/recency";

/** Rows put in place with SQL, the way the feedback consumer and preferences route store them. */
export const refOf = (customerId: string) => customerRef(env.PII_KEY, customerId);

let seq = 0;

export async function seedEvent(
  merchantId: string,
  customerId: string,
  e: { method_id?: string; occurred_at?: string; device_type?: string; amount?: number; currency?: string; location_country?: string } = {},
): Promise<void> {
  seq += 1;
  const occurredAt = e.occurred_at ?? new Date().toISOString();
  const amount = e.amount ?? 4200;
  const currency = e.currency ?? "EUR";
  await env.DB.prepare(
    `INSERT INTO usage_events (merchant_id, event_id, customer_ref, method_id, amount, currency, device_type, location_country,
       decision_id, offer_id, amount_band, recency_ref, occurred_at, received_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?, ?)`,
  )
    .bind(merchantId, `evt_${seq}_${Date.now()}`, await refOf(customerId), e.method_id ?? "visa", amount, currency, e.device_type ?? "mobile",
      e.location_country ?? "NL", amountBand(amount, currency), recencyRef(Date.parse(occurredAt)), occurredAt, occurredAt)
    .run();
}

export async function seedPreferences(
  merchantId: string,
  customerId: string,
  p: { updated_at?: string; last_used_at?: string | null; cross_merchant_consent?: boolean; favorite_methods?: string[]; personalization_enabled?: boolean } = {},
): Promise<void> {
  const at = p.updated_at ?? new Date().toISOString();
  await env.DB.prepare(
    `INSERT INTO preferences (merchant_id, customer_ref, default_method, favorite_methods, excluded_methods, personalization_enabled,
       cross_merchant_consent, created_at, updated_at, last_used_at)
     VALUES (?, ?, 'paypal', ?, '["klarna"]', ?, ?, ?, ?, ?)`,
  )
    .bind(merchantId, await refOf(customerId), JSON.stringify(p.favorite_methods ?? ["paypal"]), p.personalization_enabled === false ? 0 : 1, p.cross_merchant_consent ? 1 : 0, at, at, p.last_used_at ?? null)
    .run();
}

export async function seedConsent(merchantId: string, customerId: string, createdAt = new Date().toISOString(), action = "granted"): Promise<void> {
  await env.DB.prepare("INSERT INTO consent_log (merchant_id, customer_ref, consent_type, action, created_at) VALUES (?, ?, 'personalization', ?, ?)")
    .bind(merchantId, await refOf(customerId), action, createdAt)
    .run();
}

/** Rows of every customer table for one customer at one merchant. */
export async function customerRowCounts(merchantId: string, customerId: string): Promise<Record<string, number>> {
  const ref = await refOf(customerId);
  const out: Record<string, number> = {};
  for (const table of ["preferences", "usage_events", "method_stats", "consent_log", "customer_deletions", "data_rights_audit"]) {
    const row = await env.DB.prepare(`SELECT count(*) AS n FROM ${table} WHERE merchant_id = ? AND customer_ref = ?`).bind(merchantId, ref).first<{ n: number }>();
    out[table] = row!.n;
  }
  return out;
}

/** Every text value of every table of the database (a "dump"), for PII-at-rest checks. */
export async function dumpText(): Promise<string[]> {
  const { results: tables } = await env.DB.prepare(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'd1_%'",
  ).all<{ name: string }>();
  const values: string[] = [];
  for (const { name } of tables) {
    const { results } = await env.DB.prepare(`SELECT * FROM "${name}"`).all<Record<string, unknown>>();
    for (const row of results) for (const v of Object.values(row)) if (typeof v === "string") values.push(v);
  }
  return values;
}

export const iso = (ms: number) => new Date(ms).toISOString();
export const DAY_MS = 24 * 3600 * 1000;

/** Every table with merchant_id and customer_ref columns, found from the schema itself (so new tables are covered too). */
export async function customerTables(): Promise<string[]> {
  const { results: tables } = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'").all<{ name: string }>();
  const out: string[] = [];
  for (const { name } of tables) {
    const { results: cols } = await env.DB.prepare(`SELECT name FROM pragma_table_info(?)`).bind(name).all<{ name: string }>();
    const names = new Set(cols.map((c) => c.name));
    if (names.has("merchant_id") && names.has("customer_ref")) out.push(name);
  }
  return out.sort();
}

export async function rowsFor(table: string, merchantId: string, customerId: string): Promise<number> {
  const row = await env.DB.prepare(`SELECT count(*) AS n FROM "${table}" WHERE merchant_id = ? AND customer_ref = ?`)
    .bind(merchantId, await refOf(customerId))
    .first<{ n: number }>();
  return row!.n;
}

/** One raw row in each analytics table (migration 0005) for this customer. */
export async function seedAnalytics(merchantId: string, customerId: string): Promise<void> {
  seq += 1;
  const ref = await refOf(customerId);
  const at = new Date().toISOString();
  const key = `dk_${seq}_${Date.now()}`;
  await env.DB.batch([
    env.DB.prepare(
      `INSERT INTO analytics_decisions (merchant_id, decision_key, customer_ref, decided_at, arm, personalized, fallback_reason, ranked, device_type, country, currency, cache)
       VALUES (?, ?, ?, ?, 'treatment', 1, NULL, '["visa"]', 'mobile', 'NL', 'EUR', 'miss')`,
    ).bind(merchantId, key, ref, at),
    env.DB.prepare(
      `INSERT INTO analytics_conversions (merchant_id, decision_key, event_id, customer_ref, arm, fallback_reason, method_id, rank, amount, currency, decided_at, occurred_at, ttp_bin)
       VALUES (?, ?, ?, ?, 'treatment', NULL, 'visa', 1, 100, 'EUR', ?, ?, 3)`,
    ).bind(merchantId, key, `evt_${key}`, ref, at, at),
    env.DB.prepare("INSERT INTO analytics_offer_impressions (merchant_id, impression_id, offer_id, customer_ref, shown_at) VALUES (?, ?, 'offer_a', ?, ?)").bind(merchantId, `imp_${key}`, ref, at),
  ]);
}

/** A feedback message about this customer that the queue gave up on, stored by the dead-letter consumer (migration 0007). */
export async function seedDeadLetter(merchantId: string | null, customerId: string): Promise<void> {
  seq += 1;
  const ref = await refOf(customerId);
  const at = new Date().toISOString();
  const body = JSON.stringify({ v: 1, merchant_id: merchantId, customer_ref: ref, event_id: `evt_dead_${seq}`, method_id: "paypal", occurred_at: at });
  await env.DB.prepare(
    "INSERT INTO dead_letters (queue, message_id, merchant_id, customer_ref, body, truncated, attempts, received_at) VALUES ('feedback', ?, ?, ?, ?, 0, 6, ?)",
  ).bind(`dlq_${seq}_${Date.now()}`, merchantId, ref, body, at).run();
}
