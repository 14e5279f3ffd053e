export interface ConsentEntry {
  consent_type: "personalization" | "cross_merchant";
  action: "granted" | "revoked";
  merchant_id: string;
  timestamp: string;
}

/** The customer's consent log at this merchant, oldest first (rows are appended in order). */
export async function listConsent(db: D1Database, merchantId: string, customerRef: string): Promise<ConsentEntry[]> {
  const { results } = await db
    .prepare("SELECT consent_type, action, merchant_id, created_at AS timestamp FROM consent_log WHERE merchant_id = ? AND customer_ref = ? ORDER BY id LIMIT 1000")
    .bind(merchantId, customerRef)
    .all<ConsentEntry>();
  return results;
}

/**
 * Other merchants whose cached profile of this customer may hold usage from `merchantId` (they
 * consented there too). When consent changes here, their caches must be dropped.
 */
export async function crossMerchantPeers(db: D1Database, merchantId: string, customerRef: string): Promise<string[]> {
  const { results } = await db
    .prepare("SELECT merchant_id FROM preferences WHERE customer_ref = ? AND cross_merchant_consent = 1 AND merchant_id <> ? LIMIT 500")
    .bind(customerRef, merchantId)
    .all<{ merchant_id: string }>();
  return results.map((r) => r.merchant_id);
}
