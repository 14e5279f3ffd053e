import { randomToken, sha256Hex } from "../crypto/hash";
import { cachedRead, invalidate } from "./cachedRead";

export type KeyType = "secret" | "publishable";

export interface ApiKeyRecord {
  key_id: string;
  merchant_id: string;
  type: KeyType;
  revoked: boolean;
}

export interface ApiKeyView {
  key_id: string;
  type: KeyType;
  prefix: string;
  created_at: string;
  revoked_at: string | null;
}

/** A key: `tp2_sk_` / `tp2_pk_` + 32 random bytes (256 bits) in base64url. */
export const KEY_PATTERN = /^tp2_(sk|pk)_[A-Za-z0-9_-]{43}$/;
const PREFIX_LENGTH = 11; // "tp2_sk_" + 4 characters, enough to tell keys apart in a list

const keyCacheKey = (hash: string) => `api_key:${hash}`;

/** Revocation is effective within 60 s (API.md §1): KV entries are trusted 45 s, memory 10 s. */
const FRESH_MS = 45_000;
const MEMO_MS = 10_000;

export function newKey(type: KeyType): { key: string; keyId: string } {
  const key = `tp2_${type === "secret" ? "sk" : "pk"}_${randomToken(32)}`;
  return { key, keyId: `key_${randomToken(12)}` };
}

export async function insertKey(db: D1Database, merchantId: string, type: KeyType, createdAt: string): Promise<{ key: string; keyId: string }> {
  const { key, keyId } = newKey(type);
  await db
    .prepare("INSERT INTO api_keys (key_id, merchant_id, key_hash, type, prefix, created_at) VALUES (?, ?, ?, ?, ?, ?)")
    .bind(keyId, merchantId, await sha256Hex(key), type, key.slice(0, PREFIX_LENGTH), createdAt)
    .run();
  return { key, keyId };
}

async function loadKey(db: D1Database, hash: string): Promise<ApiKeyRecord | null> {
  const row = await db
    .prepare("SELECT key_id, merchant_id, type, revoked_at FROM api_keys WHERE key_hash = ?")
    .bind(hash)
    .first<{ key_id: string; merchant_id: string; type: KeyType; revoked_at: string | null }>();
  return row ? { key_id: row.key_id, merchant_id: row.merchant_id, type: row.type, revoked: row.revoked_at !== null } : null;
}

/** The key's record (revoked ones included, so they are cached too); null when unknown. */
export async function lookupKey(env: { DB: D1Database; CACHE: KVNamespace }, plainKey: string, waitUntil?: (p: Promise<unknown>) => void): Promise<ApiKeyRecord | null> {
  const hash = await sha256Hex(plainKey);
  return cachedRead({ kv: env.CACHE, key: keyCacheKey(hash), freshMs: FRESH_MS, memoMs: MEMO_MS, kvTtlSeconds: 3600, load: () => loadKey(env.DB, hash), waitUntil });
}

export async function listKeys(db: D1Database, merchantId: string): Promise<ApiKeyView[]> {
  const { results } = await db
    .prepare("SELECT key_id, type, prefix, created_at, revoked_at FROM api_keys WHERE merchant_id = ? ORDER BY created_at, key_id")
    .bind(merchantId)
    .all<ApiKeyView>();
  return results;
}

/**
 * Revokes a key: null when no such key, else whether its cached copy was dropped (when not, the
 * revocation still takes effect within 60 s). Already revoked keys keep their first revocation time.
 */
export async function revokeKey(env: { DB: D1Database; CACHE: KVNamespace }, keyId: string, at: string): Promise<{ cacheCleared: boolean } | null> {
  const row = await env.DB.prepare("UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE key_id = ? RETURNING key_hash")
    .bind(at, keyId)
    .first<{ key_hash: string }>();
  if (!row) return null;
  return { cacheCleared: await invalidate(env.CACHE, keyCacheKey(row.key_hash)) };
}
