import { setBounded } from "./boundedMemo";

/**
 * Read-through cache in three layers: this isolate's memory, KV, then the loader (D1).
 *
 * KV is eventually consistent (a delete can take up to ~60 s to reach every location), so a KV
 * entry carries the time it was written and is only trusted while younger than `freshMs`; past
 * that the loader is asked again. When the loader fails, a stale entry is still served
 * (availability beats freshness for auth and config) and only no entry at all is an error.
 * A miss (the loader finds nothing: an unknown key or merchant id) is never cached, in memory or
 * KV: an attacker's random keys cost one D1 read each and write nothing, evict nothing, and a key or
 * merchant created a moment later is found at once.
 */
interface Envelope<T> {
  v: T;
  at: number;
}

interface MemoEntry<T> {
  value: T;
  until: number;
}

export interface CachedReadOptions<T> {
  kv: KVNamespace;
  key: string;
  /** Trust a KV entry younger than this. */
  freshMs: number;
  /** Keep in isolate memory this long. */
  memoMs: number;
  /** KV expiration (>= 60 s, KV's minimum). */
  kvTtlSeconds: number;
  load: () => Promise<T>;
  now?: number;
  /** Called when KV fails (read or write); the read goes on without it. */
  onCacheError?: (err: unknown) => void;
  waitUntil?: (p: Promise<unknown>) => void;
}

const memo = new Map<string, MemoEntry<unknown>>();
const MEMO_MAX = 5_000;

export async function cachedRead<T>(opts: CachedReadOptions<T>): Promise<T> {
  const now = opts.now ?? Date.now();
  const hit = memo.get(opts.key) as MemoEntry<T> | undefined;
  if (hit && hit.until > now) return hit.value;

  let stale: Envelope<T> | null = null;
  try {
    const env = await opts.kv.get<Envelope<T>>(opts.key, "json");
    if (env && now - env.at < opts.freshMs) {
      remember(opts.key, env.v, now + opts.memoMs);
      return env.v;
    }
    stale = env;
  } catch (err) {
    opts.onCacheError?.(err);
  }

  let value: T;
  try {
    value = await opts.load();
  } catch (err) {
    if (stale) return stale.v;
    throw err;
  }
  if (value === null || value === undefined) return value;
  remember(opts.key, value, now + opts.memoMs);
  const write = opts.kv
    .put(opts.key, JSON.stringify({ v: value, at: now } satisfies Envelope<T>), { expirationTtl: Math.max(60, opts.kvTtlSeconds) })
    .catch((err: unknown) => opts.onCacheError?.(err));
  if (opts.waitUntil) opts.waitUntil(write);
  else await write;
  return value;
}

function remember<T>(key: string, value: T, until: number) {
  setBounded(memo, key, { value, until }, MEMO_MAX);
}

/** Drops a key from this isolate and KV (other isolates and KV locations follow within freshMs). */
/**
 * Forgets `key` here and in KV; false when KV refused. Best effort by design: a KV entry is trusted
 * only `freshMs` after it was written, so the change still takes effect within that bound.
 */
export async function invalidate(kv: KVNamespace, key: string): Promise<boolean> {
  memo.delete(key);
  try {
    await kv.delete(key);
    return true;
  } catch {
    return false;
  }
}

/** For tests: forget everything this isolate remembers. */
export function clearMemo(): void {
  memo.clear();
}
