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
  /**
   * When the cross-merchant part was read (the feature on, the customer consenting here): the time
   * (epoch ms) until which a cached copy may use it, CROSS_MERCHANT_FRESH_MS after the read began.
   * Null when it was not read. Absent from entries written before it existed.
   */
  cross_merchant_until?: number | null;
}

export type CacheOutcome = "hit" | "miss";

interface ProfileEnv {
  DB: D1Database;
  CACHE: KVNamespace;
}

export const PROFILE_TTL_SECONDS = 300;

/**
 * How long a cached profile's cross-merchant part may be used. Other merchants' counts depend on
 * state this cache is not told about: a merchant switching its `cross_merchant` feature off (admin
 * PATCH, "within 60 seconds at most", API.md §4) would otherwise stay in every peer's cached profile
 * for its 300 s TTL. The cross statement reads each contributor's feature from D1 itself, so a load
 * that begins after the PATCH leaves that merchant out; 45 s (the trust of a cached merchant config,
 * src/storage/merchants.ts) bounds the rest with margin. It also bounds a peer's entry that a consent
 * change, a deletion or a payment elsewhere could not drop (past MAX_PEER_PROFILES, a failed KV
 * delete, KV's ~60 s propagation). Only profiles with a cross-merchant part pay: one D1 read per
 * customer and merchant every 45 s instead of every 300 s.
 */
export const CROSS_MERCHANT_FRESH_MS = 45_000;
export const profileKey = (merchantId: string, customerRef: string) => `profile:${merchantId}:${customerRef}`;

/**
 * The profiles to read, as a JSON array of [merchant_id, customer_ref, cross_merchant (0/1)] bound to
 * ?1: the same five statements read one profile (/methods) or a hundred (the feedback consumer),
 * each row tagged with the index of its key (k_i) so they can be told apart.
 */
const KEYS = "SELECT key AS i, json_extract(value, '$[0]') AS m, json_extract(value, '$[1]') AS r, json_extract(value, '$[2]') AS x FROM json_each(?1)";

/**
 * The rows the cross-merchant part of key `k` (a row of KEYS) sums, in three pieces so that the read
 * (PROFILE_SQL.cross) and its version join them the same way: the customer's overall stats at other
 * merchants (CROSS_STATS, on method_stats AS s), where they consented to cross-merchant use and have
 * not opted out of personalization, and whose feature is on (CROSS_JOINS), and where their deletion
 * is not pending (CROSS_NOT_PENDING).
 */
const CROSS_STATS = "s.customer_ref = k.r AND s.merchant_id <> k.m AND s.bucket = '*'";
const CROSS_JOINS = `JOIN preferences AS p ON p.merchant_id = s.merchant_id AND p.customer_ref = s.customer_ref
      AND p.cross_merchant_consent = 1 AND p.personalization_enabled = 1
    JOIN merchants AS om ON om.id = s.merchant_id AND json_extract(om.config, '$.features.cross_merchant') = 1`;
const CROSS_NOT_PENDING = `NOT EXISTS (SELECT 1 FROM customer_deletions AS d
                      WHERE d.merchant_id = s.merchant_id AND d.customer_ref = s.customer_ref AND d.status = 'pending')`;

const PROFILE_SQL = {
  preferences: `SELECT k.i AS k_i, ${PREFERENCE_COLUMNS} FROM (${KEYS}) AS k
    JOIN preferences AS p ON p.merchant_id = k.m AND p.customer_ref = k.r`,
  stats: `SELECT k.i AS k_i, s.bucket, s.method_id, s.weight_ref, s.uses, s.last_used_at FROM (${KEYS}) AS k
    JOIN method_stats AS s ON s.merchant_id = k.m AND s.customer_ref = k.r
    ORDER BY s.bucket, s.method_id`,
  pending: `SELECT k.i AS k_i FROM (${KEYS}) AS k
    JOIN customer_deletions AS d ON d.merchant_id = k.m AND d.customer_ref = k.r AND d.status = 'pending'`,
  // Only method counts cross the merchant boundary: no other merchant's id, amount or event. Only
  // merchants with the cross_merchant feature on contribute (a merchant whose customer ids are its
  // own, not global, keeps it off: its "42" is not another merchant's "42"), and only where the
  // customer both consented to cross-merchant use and has not opted out of personalization there,
  // nor is pending deletion there.
  cross: `SELECT k.i AS k_i, s.method_id, sum(s.weight_ref) AS weight_ref, sum(s.uses) AS uses FROM (${KEYS}) AS k
    JOIN method_stats AS s ON ${CROSS_STATS}
    ${CROSS_JOINS}
    WHERE k.x = 1
      AND ${CROSS_NOT_PENDING}
    GROUP BY k.i, s.method_id
    ORDER BY s.method_id`,
  // What a cached copy must agree with D1 on, as one string per key: the preference row, the stats
  // (each event adds to uses, the purge and retention remove rows), a pending deletion and, when the
  // cross-merchant part is read (as in loadSnapshots: the key asks for it and the customer consents
  // here), a fingerprint of the other merchants' rows it sums (a payment there adds to uses; a
  // revocation, an opt-out or a deletion there, or a contributor switching its feature off, removes
  // rows). Read in the load's own batch (one transaction, so it describes that snapshot) and again
  // after each KV write (writeChecked).
  version: `SELECT k.i AS k_i, json_array(
      (SELECT json_array(p.default_method, p.favorite_methods, p.excluded_methods, p.personalization_enabled, p.cross_merchant_consent, p.updated_at)
         FROM preferences AS p WHERE p.merchant_id = k.m AND p.customer_ref = k.r),
      (SELECT json_array(count(*), total(s.uses), total(s.weight_ref), max(s.last_used_at))
         FROM method_stats AS s WHERE s.merchant_id = k.m AND s.customer_ref = k.r),
      EXISTS (SELECT 1 FROM customer_deletions AS d WHERE d.merchant_id = k.m AND d.customer_ref = k.r AND d.status = 'pending'),
      CASE WHEN k.x = 1 AND EXISTS (SELECT 1 FROM preferences AS h WHERE h.merchant_id = k.m AND h.customer_ref = k.r AND h.cross_merchant_consent = 1)
        THEN (SELECT json_array(count(*), total(s.uses), total(s.weight_ref)) FROM method_stats AS s ${CROSS_JOINS}
              WHERE ${CROSS_STATS} AND ${CROSS_NOT_PENDING}) END
    ) AS v FROM (${KEYS}) AS k`,
} as const;

type Tagged<T> = T & { k_i: number };

/** Rows grouped by the index of their key, the tag dropped. */
function byKey<T>(rows: Tagged<T>[]): Map<number, T[]> {
  const out = new Map<number, T[]>();
  for (const { k_i, ...row } of rows) {
    const list = out.get(k_i);
    if (list) list.push(row as T);
    else out.set(k_i, [row as T]);
  }
  return out;
}

export async function loadProfile(db: D1Database, merchantId: string, customerRef: string, crossMerchant: boolean, now = Date.now()): Promise<Profile> {
  return (await loadProfiles(db, [{ merchantId, customerRef, crossMerchant }], now))[0]!;
}

export interface ProfileKey {
  merchantId: string;
  customerRef: string;
  crossMerchant: boolean;
}

/**
 * Many profiles with one D1 batch of five statements, whatever their number (the feedback consumer
 * refreshes every customer a batch touched; one statement set per profile made its worst path 903 of
 * D1's 1,000 queries per invocation).
 */
export async function loadProfiles(db: D1Database, keys: readonly ProfileKey[], now = Date.now()): Promise<Profile[]> {
  return (await loadSnapshots(db, keys, now)).profiles;
}

/** Profiles as loadProfiles reads them, with the version (PROFILE_SQL.version) of each snapshot. */
export async function loadSnapshots(db: D1Database, keys: readonly ProfileKey[], now: number): Promise<{ profiles: Profile[]; versions: string[] }> {
  if (keys.length === 0) return { profiles: [], versions: [] };
  // Taken before the read: what the read saw is at most this old.
  const crossUntil = now + CROSS_MERCHANT_FRESH_MS;
  const json = keysJson(keys);
  const [prefs, stats, pending, cross, version] = await db.batch<unknown>(
    [PROFILE_SQL.preferences, PROFILE_SQL.stats, PROFILE_SQL.pending, PROFILE_SQL.cross, PROFILE_SQL.version].map((sql) => db.prepare(sql).bind(json)),
  );
  const prefsBy = byKey(prefs!.results as Tagged<PreferenceRow>[]);
  const statsBy = byKey(stats!.results as Tagged<MethodStat>[]);
  const pendingBy = byKey(pending!.results as Tagged<object>[]);
  const crossBy = byKey(cross!.results as Tagged<CrossMerchantStat>[]);
  const profiles = keys.map((k, key) => {
    const prefRow = prefsBy.get(key)?.[0];
    const preferences = prefRow ? fromPreferenceRow(prefRow) : null;
    const crossRead = k.crossMerchant && (preferences?.cross_merchant_consent ?? false);
    return {
      preferences,
      stats: statsBy.get(key) ?? [],
      pending_deletion: pendingBy.has(key),
      cross_merchant: crossRead ? (crossBy.get(key) ?? []) : [],
      cross_merchant_until: crossRead ? crossUntil : null,
    };
  });
  return { profiles, versions: versionsOf(keys, version!.results as Tagged<{ v: string }>[]) };
}

const keysJson = (keys: readonly ProfileKey[]) => JSON.stringify(keys.map((k) => [k.merchantId, k.customerRef, k.crossMerchant ? 1 : 0]));

function versionsOf(keys: readonly ProfileKey[], rows: Tagged<{ v: string }>[]): string[] {
  const by = byKey(rows);
  return keys.map((_, i) => by.get(i)?.[0]?.v ?? "");
}

/** The current version of each profile in D1, one statement for all of them. */
async function readVersions(db: D1Database, keys: readonly ProfileKey[]): Promise<string[]> {
  const { results } = await db.prepare(PROFILE_SQL.version).bind(keysJson(keys)).all<Tagged<{ v: string }>>();
  return versionsOf(keys, results);
}

/**
 * Whether a cached profile can answer for a merchant whose `cross_merchant` feature is as given, at
 * `now`: its cross-merchant part must have been read (the customer consents here) and still be
 * fresh (CROSS_MERCHANT_FRESH_MS). A customer who does not consent here needs no cross part.
 */
function cachedCrossIsFresh(cached: Profile, crossMerchant: boolean, now: number): boolean {
  if (!crossMerchant || !cached.preferences?.cross_merchant_consent) return true;
  return typeof cached.cross_merchant_until === "number" && now < cached.cross_merchant_until;
}

/** A profile without its cross-merchant part (the merchant's feature is off, or the part is stale). */
const withoutCross = (p: Profile): Profile => (p.cross_merchant.length === 0 ? p : { ...p, cross_merchant: [] });

/**
 * Read-through KV (TTL 300 s) over D1. No isolate memory on purpose: a preference change must be
 * visible to the next /methods call wherever it lands. The cross-merchant part of an entry is used
 * for CROSS_MERCHANT_FRESH_MS only; past that the entry is read again (for the profiles that have
 * one), and a merchant with the feature off never uses one. A KV failure degrades to a D1 read; a D1
 * failure is thrown (the route answers with the `degraded` fallback), unless an entry whose only
 * fault is a stale cross-merchant part is at hand: it answers without that part.
 */
export async function readProfile(
  env: ProfileEnv,
  merchantId: string,
  customerRef: string,
  opts: { crossMerchant: boolean; waitUntil?: (p: Promise<unknown>) => void; onCacheError?: (err: unknown) => void; now?: number },
): Promise<{ profile: Profile; cache: CacheOutcome }> {
  const now = opts.now ?? Date.now();
  const key = profileKey(merchantId, customerRef);
  let stale: Profile | null = null;
  try {
    const cached = await env.CACHE.get<Profile>(key, "json");
    if (cached && cachedCrossIsFresh(cached, opts.crossMerchant, now)) {
      return { profile: opts.crossMerchant ? cached : withoutCross(cached), cache: "hit" };
    }
    stale = cached;
  } catch (err) {
    opts.onCacheError?.(err);
  }
  const keys = [{ merchantId, customerRef, crossMerchant: opts.crossMerchant }];
  let snapshot: { profiles: Profile[]; versions: string[] };
  try {
    snapshot = await loadSnapshots(env.DB, keys, now);
  } catch (err) {
    if (stale) return { profile: withoutCross(stale), cache: "hit" };
    throw err;
  }
  const profile = snapshot.profiles[0]!;
  const write = writeChecked(env, keys, snapshot).then(({ error }) => {
    if (error !== null) opts.onCacheError?.(error);
  });
  if (opts.waitUntil) opts.waitUntil(write);
  else await write;
  return { profile, cache: "miss" };
}

/**
 * Reloads from D1 and rewrites the cache entry (after a preference change). Throws when D1 fails or
 * the entry could be neither written nor, after a concurrent change, dropped.
 */
export async function refreshProfile(env: ProfileEnv, merchantId: string, customerRef: string, crossMerchant: boolean): Promise<Profile> {
  const { profiles, unwritten, error } = await refreshProfiles(env, [{ merchantId, customerRef, crossMerchant }]);
  if (unwritten.length > 0) throw error;
  return profiles[0]!;
}

/**
 * Reloads many profiles with one D1 batch and rewrites their cache entries in parallel; returns them,
 * aligned with `keys`, and the keys whose entry was not rewritten and may be stale (see writeChecked):
 * the KV write failed (KV also refuses a second write to one key within a second), or an entry that
 * had to be dropped could not be. Throws when the D1 load fails.
 */
export async function refreshProfiles(env: ProfileEnv, keys: readonly ProfileKey[]): Promise<{ profiles: Profile[]; unwritten: ProfileKey[]; error: unknown }> {
  const snapshot = await loadSnapshots(env.DB, keys, Date.now());
  return { profiles: snapshot.profiles, ...(await writeChecked(env, keys, snapshot)) };
}

export async function invalidateProfile(env: ProfileEnv, merchantId: string, customerRef: string): Promise<void> {
  await env.CACHE.delete(profileKey(merchantId, customerRef));
}

/**
 * How long to wait before writing a key again that was written a moment ago: KV takes one write per
 * key per second. Used by the drops below and by the feedback consumer's second refresh.
 */
export const KV_REWRITE_WAIT_MS = 1_100;
const DROP_ATTEMPTS = 3;

/**
 * Writes each snapshot to KV, then reads the versions again from D1 and drops every entry whose
 * profile changed in between. KV has no conditional write, so without the second read a writer that
 * read D1 just before a change and wrote KV just after the change's own refresh (a /methods miss
 * racing a PUT /preferences, a feedback refresh racing a deletion) would leave the old profile in the
 * cache for its 300 s TTL. With it, whichever write lands last, either it holds the current profile
 * or its writer sees the change and drops it: every change to a profile is followed by its own
 * refresh or drop, and every write by this check. Costs one D1 query per call, for all its keys.
 *
 * A failed put is checked too (it may have landed: a timeout); when the check itself cannot read D1,
 * every key is dropped, since a drop is always safe. Returns the keys whose entry may still be stale
 * or was not rewritten as asked: the put failed, or a drop was refused DROP_ATTEMPTS times (KV takes
 * one write per key per second). A key dropped instead of rewritten is not among them: no entry
 * means the next read fills from D1. `error` is the first failure seen (null when none), also when
 * every key ended up safe (a check that failed, its drops done).
 *
 * The cross-merchant part is covered too (a revocation, an opt-out, a deletion or a payment at
 * another merchant drops this merchant's entry, and the write of a miss that read before it is
 * dropped here); what no drop follows (a contributor's feature switched off by PATCH, peers past
 * the drop caps) stays bounded by CROSS_MERCHANT_FRESH_MS. Not covered: preferences' created_at /
 * last_used_at, which scoring does not read.
 */
export async function writeChecked(env: ProfileEnv, keys: readonly ProfileKey[], snapshot: { profiles: Profile[]; versions: string[] }): Promise<{ unwritten: ProfileKey[]; error: unknown }> {
  if (keys.length === 0) return { unwritten: [], error: null };
  const writes = await Promise.allSettled(keys.map((k, i) => writeProfile(env.CACHE, profileKey(k.merchantId, k.customerRef), snapshot.profiles[i]!)));
  let error: unknown = null;
  const note = (reason: unknown) => {
    error ??= reason ?? new Error("KV operation failed");
  };
  const unwritten = new Set<number>();
  writes.forEach((w, i) => {
    if (w.status === "rejected") {
      unwritten.add(i);
      note(w.reason);
    }
  });
  let changed: number[];
  try {
    const current = await readVersions(env.DB, keys);
    changed = keys.flatMap((_, i) => (current[i] !== snapshot.versions[i] ? [i] : []));
  } catch (err) {
    note(err);
    changed = keys.map((_, i) => i);
  }
  const drops = await Promise.allSettled(changed.map((i) => dropWithRetry(env, keys[i]!)));
  drops.forEach((d, j) => {
    if (d.status === "rejected") {
      unwritten.add(changed[j]!);
      note(d.reason);
    }
  });
  return { unwritten: [...unwritten].sort((a, b) => a - b).map((i) => keys[i]!), error };
}

async function dropWithRetry(env: ProfileEnv, key: ProfileKey): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await invalidateProfile(env, key.merchantId, key.customerRef);
      return;
    } catch (err) {
      if (attempt >= DROP_ATTEMPTS) throw err;
      await new Promise((resolve) => setTimeout(resolve, KV_REWRITE_WAIT_MS));
    }
  }
}

function writeProfile(kv: KVNamespace, key: string, profile: Profile): Promise<void> {
  return kv.put(key, JSON.stringify(profile), { expirationTtl: PROFILE_TTL_SECONDS });
}
