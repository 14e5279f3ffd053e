import type { PopularityRow } from "../personalization/prior";
import { cachedRead } from "./cachedRead";

const popularityKey = (merchantId: string) => `popularity:${merchantId}`;

/** The prior moves slowly: KV is trusted 300 s, isolate memory 30 s. */
const FRESH_MS = 300_000;
const MEMO_MS = 30_000;
/**
 * Bounds the cached value; the heaviest rows carry the prior (long tail segments back off to parents).
 * Segments per country: 1 + 3 device classes + 4 amount bands (migration 0006), each × enabled methods.
 */
const MAX_ROWS = 5_000;

async function loadPopularity(db: D1Database, merchantId: string): Promise<PopularityRow[]> {
  const { results } = await db
    .prepare("SELECT segment, method_id, weight_ref, uses FROM method_popularity WHERE merchant_id = ? ORDER BY weight_ref DESC LIMIT ?")
    .bind(merchantId, MAX_ROWS)
    .all<PopularityRow>();
  return results;
}

/** The merchant's payments by segment (population prior for cold start), read through the cache. */
export function readPopularity(
  env: { DB: D1Database; CACHE: KVNamespace },
  merchantId: string,
  opts: { waitUntil?: (p: Promise<unknown>) => void; onCacheError?: (err: unknown) => void } = {},
): Promise<PopularityRow[]> {
  return cachedRead({
    kv: env.CACHE,
    key: popularityKey(merchantId),
    freshMs: FRESH_MS,
    memoMs: MEMO_MS,
    kvTtlSeconds: 600,
    load: () => loadPopularity(env.DB, merchantId),
    waitUntil: opts.waitUntil,
    onCacheError: opts.onCacheError,
  });
}
