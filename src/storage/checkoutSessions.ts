import type { DeviceType } from "../schemas/common";

/**
 * Checkout sessions in KV (API.md §7). The value holds the customer's pseudonym (never the id), the
 * basket, and only a SHA-256 hash of the client secret; the entry expires with the session.
 */
export interface StoredSession {
  merchant_id: string;
  customer_ref: string;
  amount: number | null;
  currency: string | null;
  country: string | null;
  device_type: DeviceType | null;
  /** ISO 8601 UTC; KV expiry is coarse, so readers check this as well. */
  expires_at: string;
  /** sha256Hex of the whole client secret. */
  secret_hash: string;
}

export const sessionKey = (sessionId: string) => `session:${sessionId}`;

export async function writeSession(kv: KVNamespace, sessionId: string, session: StoredSession, ttlSeconds: number): Promise<void> {
  // KV refuses expirations under 60 s; expires_in is at least 60 anyway.
  await kv.put(sessionKey(sessionId), JSON.stringify(session), { expirationTtl: Math.max(60, ttlSeconds) });
}

/** The stored session, or null when there is none (never issued, or expired out of KV). */
export function readSession(kv: KVNamespace, sessionId: string): Promise<StoredSession | null> {
  return kv.get<StoredSession>(sessionKey(sessionId), "json");
}
