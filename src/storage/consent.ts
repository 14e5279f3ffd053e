import type { z } from "zod";
import type { ConsentReason as ConsentReasonSchema } from "../schemas/common";
import { CROSS_MERCHANT_FRESH_MS } from "./profile";

export interface ConsentEntry {
  consent_type: "personalization" | "cross_merchant";
  action: "granted" | "revoked";
  merchant_id: string;
  timestamp: string;
  /** Only on a change the customer did not make: 'retention', the consent lapsed with an expired profile (migration 0012); 'erasure', the purge erased the customer's preferences (0015). */
  reason?: ConsentReason;
}

/** The schema's value (schemas/common.ts declares it once, for validation and the OpenAPI document). */
export type ConsentReason = NonNullable<z.infer<typeof ConsentReasonSchema>>;

/** A consent_log row's `reason` column as the API shows it: left out when NULL (the customer's own change). */
export function withReason<T extends object>({ reason, ...entry }: T & { reason: ConsentReason | null }): T & { reason?: ConsentReason } {
  return (reason === null ? entry : { ...entry, reason }) as T & { reason?: ConsentReason };
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
      `SELECT consent_type, action, merchant_id, timestamp, reason FROM
         (SELECT id, consent_type, action, merchant_id, created_at AS timestamp, reason FROM consent_log
           WHERE merchant_id = ?1 AND customer_ref = ?2 ORDER BY id DESC LIMIT ?3)
       ORDER BY id`,
    )
    .bind(merchantId, customerRef, max + 1)
    .all<Omit<ConsentEntry, "reason"> & { reason: ConsentReason | null }>();
  const truncated = results.length > max;
  return { entries: (truncated ? results.slice(1) : results).map(withReason), truncated };
}

/** Peer merchants read per statement (one page of crossMerchantPeers). */
export const PEER_PAGE_SIZE = 100;

/**
 * Peer profiles one request clears at most. KV allows 1,000 operations per Worker invocation and a
 * request past it fails as a whole, so an unbounded fan-out would make a deletion fail on every
 * retry; the request's own reads (key, merchant) and its own profile take a few operations more.
 */
export const MAX_PEER_PROFILES = 900;

/** The `cache_peers_left` log field when crossMerchantPeers was not complete. */
export const PEERS_LEFT_NOTE = `more than ${MAX_PEER_PROFILES} cross-merchant peer profiles; the rest use its counts for at most ${CROSS_MERCHANT_FRESH_MS / 1000} s more`;

/**
 * One page of the other merchants where this customer granted cross-merchant consent, in merchant id
 * order after `after` (keyset paging over idx_preferences_cross). ?1 customer_ref, ?2 this merchant,
 * ?3 the last merchant id of the previous page ('' for the first), ?4 the page size.
 */
export function crossMerchantPeerPage(db: D1Database, merchantId: string, customerRef: string, after = "", limit = PEER_PAGE_SIZE): D1PreparedStatement {
  return db
    .prepare(
      `SELECT merchant_id FROM preferences
        WHERE customer_ref = ?1 AND cross_merchant_consent = 1 AND merchant_id <> ?2 AND merchant_id > ?3
        ORDER BY merchant_id LIMIT ?4`,
    )
    .bind(customerRef, merchantId, after, limit);
}

export interface PeerPaging {
  /** The first page, when the caller read it already (with `crossMerchantPeerPage` and `pageSize`) in its own batch. */
  firstPage?: string[];
  pageSize?: number;
  /** At most this many peers are returned. */
  max?: number;
}

/**
 * Other merchants whose cached profile of this customer may hold usage from `merchantId` (they
 * consented there too): when consent or the customer's state changes here, their caches must be
 * dropped. Every one of them, page by page (each statement reads at most `pageSize`), up to `max`;
 * `complete` is false when more exist than that.
 */
export async function crossMerchantPeers(
  db: D1Database,
  merchantId: string,
  customerRef: string,
  { firstPage, pageSize = PEER_PAGE_SIZE, max = MAX_PEER_PROFILES }: PeerPaging = {},
): Promise<{ peers: string[]; complete: boolean }> {
  const read = async (after: string, limit: number) =>
    (await crossMerchantPeerPage(db, merchantId, customerRef, after, limit).all<{ merchant_id: string }>()).results.map((r) => r.merchant_id);
  const peers: string[] = [];
  let limit = pageSize;
  let page = firstPage ?? (await read("", limit));
  for (;;) {
    peers.push(...page);
    if (peers.length > max) return { peers: peers.slice(0, max), complete: false };
    if (page.length < limit) return { peers, complete: true };
    // One more than `max` is asked for, so that "exactly max" and "more than max" can be told apart.
    limit = Math.min(pageSize, max + 1 - peers.length);
    page = await read(page[page.length - 1]!, limit);
  }
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
