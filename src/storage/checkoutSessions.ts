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
  /** ISO 8601 UTC, when it was opened (what a retry's 24 hours count from); absent from entries written before it was kept. */
  opened_at?: string;
  /** sha256Hex of the whole client secret. */
  secret_hash: string;
}

export const sessionKey = (sessionId: string) => `session:${sessionId}`;

export async function writeSession(kv: KVNamespace, sessionId: string, session: StoredSession, ttlSeconds: number): Promise<void> {
  // KV refuses expirations under 60 s; expires_in is at least 60 anyway.
  await kv.put(sessionKey(sessionId), JSON.stringify(session), { expirationTtl: Math.max(60, ttlSeconds) });
}

/**
 * What a retry under an Idempotency-Key needs once its session has expired out of KV: that it was
 * opened, when, and until when. No customer data; kept two days (src/checkout/session.ts).
 */
export interface SessionReplay {
  expires_at: string;
  /** Absent from records written before it was kept: those answer a retry only the same UTC day. */
  opened_at?: string;
}

export const sessionReplayKey = (sessionId: string) => `session_replay:${sessionId}`;

export async function writeSessionReplay(kv: KVNamespace, sessionId: string, replay: SessionReplay, ttlSeconds: number): Promise<void> {
  await kv.put(sessionReplayKey(sessionId), JSON.stringify(replay), { expirationTtl: Math.max(60, ttlSeconds) });
}

export function readSessionReplay(kv: KVNamespace, sessionId: string): Promise<SessionReplay | null> {
  return kv.get<SessionReplay>(sessionReplayKey(sessionId), "json");
}

/** The stored session, or null when there is none (never issued, or expired out of KV). */
export function readSession(kv: KVNamespace, sessionId: string): Promise<StoredSession | null> {
  return kv.get<StoredSession>(sessionKey(sessionId), "json");
}
