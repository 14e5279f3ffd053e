import { fromPreferenceRow, PREFERENCE_COLUMNS, type PreferenceRow, type StoredPreferences } from "./preferences";

/** One aggregate row of method_stats (migration 0002). */
export interface MethodStat {
  bucket: string;
  method_id: string;
  weight_ref: number;
  uses: number;
  last_used_at: string;
}

/** Overall usage of a method by the same customer at other merchants that hold their consent. */
export interface CrossMerchantStat {
  method_id: string;
  weight_ref: number;
  uses: number;
}

/** Everything scoring needs about one customer at one merchant; read with one D1 batch or one KV get. */
export interface Profile {
  preferences: StoredPreferences | null;
  stats: MethodStat[];
  pending_deletion: boolean;
  /** Empty unless the merchant's `cross_merchant` feature is on and the customer consented here. */
  cross_merchant: CrossMerchantStat[];
}

export type CacheOutcome = "hit" | "miss";

interface ProfileEnv {
  DB: D1Database;
  CACHE: KVNamespace;
}

export const PROFILE_TTL_SECONDS = 300;
export const profileKey = (merchantId: string, customerRef: string) => `profile:${merchantId}:${customerRef}`;

/** The statements that read one profile (3, or 4 with cross-merchant counts). */
function profileStatements(db: D1Database, merchantId: string, customerRef: string, crossMerchant: boolean): D1PreparedStatement[] {
  const statements = [
    db.prepare(`SELECT ${PREFERENCE_COLUMNS} FROM preferences WHERE merchant_id = ? AND customer_ref = ?`).bind(merchantId, customerRef),
    db.prepare("SELECT bucket, method_id, weight_ref, uses, last_used_at FROM method_stats WHERE merchant_id = ? AND customer_ref = ?").bind(merchantId, customerRef),
    db.prepare("SELECT 1 AS pending FROM customer_deletions WHERE merchant_id = ? AND customer_ref = ? AND status = 'pending'").bind(merchantId, customerRef),
  ];
  if (crossMerchant) {
    // Only method counts cross the merchant boundary: no other merchant's id, amount or event.
    statements.push(
      db
        .prepare(
          `SELECT s.method_id, sum(s.weight_ref) AS weight_ref, sum(s.uses) AS uses
           FROM method_stats AS s
           JOIN preferences AS p ON p.merchant_id = s.merchant_id AND p.customer_ref = s.customer_ref
           WHERE s.customer_ref = ? AND s.merchant_id <> ? AND s.bucket = '*' AND p.cross_merchant_consent = 1
             AND NOT EXISTS (SELECT 1 FROM customer_deletions AS d
                             WHERE d.merchant_id = s.merchant_id AND d.customer_ref = s.customer_ref AND d.status = 'pending')
           GROUP BY s.method_id`,
        )
        .bind(customerRef, merchantId),
    );
  }
  return statements;
}

function profileFromResults(results: D1Result<unknown>[], crossMerchant: boolean): Profile {
  const [prefs, stats, deletion, cross] = results;
  const prefRow = prefs!.results[0] as PreferenceRow | undefined;
  const preferences = prefRow ? fromPreferenceRow(prefRow) : null;
  const consented = preferences?.cross_merchant_consent ?? false;
  return {
    preferences,
    stats: stats!.results as MethodStat[],
    pending_deletion: deletion!.results.length > 0,
    cross_merchant: crossMerchant && consented && cross ? (cross.results as CrossMerchantStat[]) : [],
  };
}

export async function loadProfile(db: D1Database, merchantId: string, customerRef: string, crossMerchant: boolean): Promise<Profile> {
  return profileFromResults(await db.batch<unknown>(profileStatements(db, merchantId, customerRef, crossMerchant)), crossMerchant);
}

export interface ProfileKey {
  merchantId: string;
  customerRef: string;
  crossMerchant: boolean;
}

/** Many profiles with one D1 batch (the feedback consumer refreshes every customer a batch touched). */
export async function loadProfiles(db: D1Database, keys: readonly ProfileKey[]): Promise<Profile[]> {
  const perKey = keys.map((k) => profileStatements(db, k.merchantId, k.customerRef, k.crossMerchant));
  const results = keys.length > 0 ? await db.batch<unknown>(perKey.flat()) : [];
  let offset = 0;
  return keys.map((k, i) => {
    const count = perKey[i]!.length;
    const profile = profileFromResults(results.slice(offset, offset + count), k.crossMerchant);
    offset += count;
    return profile;
  });
}

/**
 * Read-through KV (TTL 300 s) over D1. No isolate memory on purpose: a preference change must be
 * visible to the next /methods call wherever it lands. A KV failure degrades to a D1 read; a D1
 * failure is thrown (the route answers with the `degraded` fallback).
 */
export async function readProfile(
  env: ProfileEnv,
  merchantId: string,
  customerRef: string,
  opts: { crossMerchant: boolean; waitUntil?: (p: Promise<unknown>) => void; onCacheError?: (err: unknown) => void },
): Promise<{ profile: Profile; cache: CacheOutcome }> {
  const key = profileKey(merchantId, customerRef);
  try {
    const cached = await env.CACHE.get<Profile>(key, "json");
    if (cached) return { profile: cached, cache: "hit" };
  } catch (err) {
    opts.onCacheError?.(err);
  }
  const profile = await loadProfile(env.DB, merchantId, customerRef, opts.crossMerchant);
  const write = writeProfile(env.CACHE, key, profile).catch((err: unknown) => opts.onCacheError?.(err));
  if (opts.waitUntil) opts.waitUntil(write);
  else await write;
  return { profile, cache: "miss" };
}

/** Reloads from D1 and rewrites the cache entry (after a preference change or a feedback batch). */
export async function refreshProfile(env: ProfileEnv, merchantId: string, customerRef: string, crossMerchant: boolean): Promise<Profile> {
  const profile = await loadProfile(env.DB, merchantId, customerRef, crossMerchant);
  await writeProfile(env.CACHE, profileKey(merchantId, customerRef), profile);
  return profile;
}

/** Reloads many profiles with one D1 batch and rewrites their cache entries in parallel; returns them, aligned with `keys`. */
export async function refreshProfiles(env: ProfileEnv, keys: readonly ProfileKey[]): Promise<Profile[]> {
  const profiles = await loadProfiles(env.DB, keys);
  await Promise.all(keys.map((k, i) => writeProfile(env.CACHE, profileKey(k.merchantId, k.customerRef), profiles[i]!)));
  return profiles;
}

export async function invalidateProfile(env: ProfileEnv, merchantId: string, customerRef: string): Promise<void> {
  await env.CACHE.delete(profileKey(merchantId, customerRef));
}

function writeProfile(kv: KVNamespace, key: string, profile: Profile): Promise<void> {
  return kv.put(key, JSON.stringify(profile), { expirationTtl: PROFILE_TTL_SECONDS });
}
