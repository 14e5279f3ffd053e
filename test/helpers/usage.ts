import { env } from "cloudflare:test";
import { customerRef } from "../../src/crypto/pseudonym";
import { amountBand } from "../../src/personalization/buckets";
import { recencyRef } from "../../src/personalization/recency";

/** Payments put in place with SQL, as the feedback consumer stores them; the 0002 trigger fills method_stats and method_popularity. */
export const refOf = (customerId: string) => customerRef(env.PII_KEY, customerId);

let seq = 0;

export interface Payment {
  method_id: string;
  device_type?: "mobile" | "desktop" | "tablet" | null;
  country?: string | null;
  amount?: number | null;
  currency?: string | null;
  occurred_at?: string;
}

export async function recordPayments(merchantId: string, customerId: string, payments: Payment[]): Promise<void> {
  const ref = await refOf(customerId);
  const statements = payments.map((p) => {
    seq += 1;
    const at = p.occurred_at ?? new Date().toISOString();
    const amount = p.amount === undefined ? 4200 : p.amount;
    const currency = p.currency === undefined ? "EUR" : p.currency;
    return env.DB.prepare(
      `INSERT INTO usage_events (merchant_id, event_id, customer_ref, method_id, amount, currency, device_type, location_country,
         amount_band, recency_ref, occurred_at, received_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).bind(merchantId, `evt_p_${seq}`, ref, p.method_id, amount, currency, p.device_type === undefined ? "mobile" : p.device_type,
      p.country === undefined ? "NL" : p.country, amountBand(amount, currency), recencyRef(Date.parse(at)), at, at);
  });
  await env.DB.batch(statements);
}

/** `count` payments with the same method and context. */
export const repeat = (count: number, p: Payment): Payment[] => Array.from({ length: count }, () => ({ ...p }));
