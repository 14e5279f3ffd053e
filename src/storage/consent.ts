export interface ConsentEntry {
  consent_type: "personalization" | "cross_merchant";
  action: "granted" | "revoked";
  merchant_id: string;
  timestamp: string;
}

/** Entries GET /consent shows at most: the newest ones (the export has the whole log). */
export const CONSENT_LIST_MAX = 1000;

/**
 * The customer's consent log at this merchant, oldest first (rows are appended in order): the newest
 * CONSENT_LIST_MAX entries, and whether older ones were left out.
 */
export async function listConsent(db: D1Database, merchantId: string, customerRef: string, max = CONSENT_LIST_MAX): Promise<{ entries: ConsentEntry[]; truncated: boolean }> {
  const { results } = await db
    .prepare(
      `SELECT consent_type, action, merchant_id, timestamp FROM
         (SELECT id, consent_type, action, merchant_id, created_at AS timestamp FROM consent_log
           WHERE merchant_id = ?1 AND customer_ref = ?2 ORDER BY id DESC LIMIT ?3)
       ORDER BY id`,
    )
    .bind(merchantId, customerRef, max + 1)
    .all<ConsentEntry>();
  const truncated = results.length > max;
  return { entries: truncated ? results.slice(1) : results, truncated };
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

/**
 * For customers who just paid at `merchantId`: the other merchants whose cached profile may count
 * that payment (the customer consented to cross-merchant use here and there). One query for any
 * number of customers (their refs as one JSON parameter). The caller drops those caches.
 */
export async function crossMerchantPeersOf(db: D1Database, merchantId: string, customerRefs: readonly string[]): Promise<{ merchant_id: string; customer_ref: string }[]> {
  const { results } = await db
    .prepare(
      `SELECT p.merchant_id, p.customer_ref FROM preferences AS p
         JOIN preferences AS here ON here.customer_ref = p.customer_ref AND here.merchant_id = ?1 AND here.cross_merchant_consent = 1
        WHERE p.customer_ref IN (SELECT value FROM json_each(?2)) AND p.cross_merchant_consent = 1 AND p.merchant_id <> ?1
        LIMIT 10000`,
    )
    .bind(merchantId, JSON.stringify(customerRefs))
    .all<{ merchant_id: string; customer_ref: string }>();
  return results;
}
