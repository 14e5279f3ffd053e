import type { z } from "@hono/zod-openapi";
import { canonicalOrigin, FEATURE_NAMES, FEATURES_OFF, type MerchantView, type Offer, Origin } from "../schemas/merchant";
import { setBounded } from "./boundedMemo";
import { cachedRead, invalidate } from "./cachedRead";

export type Merchant = z.infer<typeof MerchantView>;
type MerchantConfig = Omit<Merchant, "merchant_id" | "name" | "tier" | "created_at" | "updated_at">;

interface MerchantRow {
  id: string;
  name: string;
  tier: Merchant["tier"];
  config: string;
  created_at: string;
  updated_at: string;
  version: number;
}

const merchantKey = (id: string) => `merchant:${id}`;

/** Config changes reach every isolate within 60 s (API.md §4): KV entries are trusted for 45 s, memory for 10 s. */
const FRESH_MS = 45_000;
const MEMO_MS = 10_000;

function fromRow(row: MerchantRow): Merchant {
  const config = JSON.parse(row.config) as Partial<MerchantConfig>;
  return {
    merchant_id: row.id,
    name: row.name,
    tier: row.tier,
    methods: config.methods ?? [],
    // Rows saved before origins were stored canonically held "https://Shop.Example:443"; migration
    // 0014 rewrote them, except spellings SQL cannot canonicalize like URL does ("http://127.1").
    allowed_origins: [...new Set((config.allowed_origins ?? []).map((o) => canonicalOrigin(o) ?? o))],
    rate_limit: config.rate_limit ?? null,
    holdout_percent: config.holdout_percent ?? 0,
    features: { ...FEATURES_OFF, ...pickFeatures(config.features) },
    offers: (config.offers ?? []) as Offer[],
    scoring_weights: config.scoring_weights ?? {},
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

/** The stored switches this code knows (a row may predate some, or hold one since removed). */
function pickFeatures(stored: Partial<Merchant["features"]> | undefined): Partial<Merchant["features"]> {
  return Object.fromEntries(FEATURE_NAMES.flatMap((name) => (typeof stored?.[name] === "boolean" ? [[name, stored[name]]] : [])));
}

function configOf(m: MerchantConfig): string {
  const config: MerchantConfig = {
    methods: m.methods,
    allowed_origins: m.allowed_origins,
    rate_limit: m.rate_limit,
    holdout_percent: m.holdout_percent,
    features: m.features,
    offers: m.offers,
    scoring_weights: m.scoring_weights,
  };
  return JSON.stringify(config);
}

/** The columns of a MerchantRow, in every read of whole merchants. */
const MERCHANT_COLUMNS = "id, name, tier, config, created_at, updated_at, version";

function selectRow(db: D1Database, id: string): Promise<MerchantRow | null> {
  return db.prepare(`SELECT ${MERCHANT_COLUMNS} FROM merchants WHERE id = ?`).bind(id).first<MerchantRow>();
}

export async function loadMerchant(db: D1Database, id: string): Promise<Merchant | null> {
  return (await loadVersionedMerchant(db, id))?.merchant ?? null;
}

/**
 * The merchant with its row's version (migration 0013): every write moves it on, an operator's SQL
 * included (the trigger), so it is the admin API's entity tag (ETag / If-Match).
 */
export async function loadVersionedMerchant(db: D1Database, id: string): Promise<{ merchant: Merchant; version: number } | null> {
  const row = await selectRow(db, id);
  return row ? { merchant: fromRow(row), version: row.version } : null;
}

/**
 * One page of merchants in the order of their ids, from just after `after`; `next` is the last id
 * of the page when more follow (one row more is read to know), else null.
 */
export async function listMerchants(db: D1Database, limit: number, after?: string): Promise<{ merchants: Merchant[]; next: string | null }> {
  const { results } = await db
    .prepare(`SELECT ${MERCHANT_COLUMNS} FROM merchants WHERE id > ? ORDER BY id LIMIT ?`)
    .bind(after ?? "", limit + 1)
    .all<MerchantRow>();
  const page = results.slice(0, limit).map(fromRow);
  return { merchants: page, next: results.length > limit ? page.at(-1)!.merchant_id : null };
}

/** The merchant's config through the cache; null when no such merchant. */
export function readMerchant(env: { DB: D1Database; CACHE: KVNamespace }, id: string, waitUntil?: (p: Promise<unknown>) => void): Promise<Merchant | null> {
  return cachedRead({
    kv: env.CACHE,
    key: merchantKey(id),
    freshMs: FRESH_MS,
    memoMs: MEMO_MS,
    kvTtlSeconds: 600,
    load: () => loadMerchant(env.DB, id),
    waitUntil,
  });
}

/** Inserts a merchant; false when the id exists. */
export async function insertMerchant(db: D1Database, m: Merchant): Promise<boolean> {
  const res = await db
    .prepare("INSERT INTO merchants (id, name, tier, config, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING")
    .bind(m.merchant_id, m.name, m.tier, configOf(m), m.created_at, m.updated_at)
    .run();
  // meta.changes also counts the merchant_origins rows its trigger writes: the merchant either was inserted or not.
  const inserted = (res.meta.changes ?? 0) > 0;
  if (inserted) forgetOrigins(m.allowed_origins);
  return inserted;
}

export type MerchantUpdate =
  | { status: "not_found" }
  /** Every attempt lost the race to another write of the same merchant. */
  | { status: "contended" }
  /** The stored version is none of those the caller's precondition names: nothing changed (`version` is the stored one). */
  | { status: "precondition_failed"; version: number }
  /** `cacheCleared` false: its cached copy could not be dropped (it then expires within 60 s). */
  | { status: "updated"; merchant: Merchant; version: number; cacheCleared: boolean }
  /** The change left every field as it was: nothing written, `updated_at` and the version kept, the cache untouched. */
  | { status: "unchanged"; merchant: Merchant; version: number };

/**
 * A precondition on the stored version (If-Match): `"any"` (If-Match: *) holds whenever the merchant
 * exists; a list holds when the stored version is one of them.
 */
export type VersionPrecondition = "any" | readonly number[];

/**
 * Enough for every writer of a burst of concurrent PATCHes of one merchant to get through: each
 * round of conflicting writes lets at least one through, so 10 attempts serve 10 writers at once.
 */
const UPDATE_ATTEMPTS = 10;

/**
 * Read-modify-write of one merchant that loses no concurrent write: `change` gets the stored
 * merchant and returns it changed (it may throw, e.g. a validation error of the merged result); the
 * write is a compare-and-swap on the row's version (migration 0013), so when another write got in
 * between, the row is read again and `change` applied to it anew. Name, tier, config and with it
 * allowed_origins (merchant_origins, kept by a trigger in the same statement) and the offers change
 * together, in one statement: a reader sees the merchant before or after, never half of it.
 *
 * With `ifMatch`, the change applies only to a version the caller has seen: the precondition is
 * checked on every read, before `change` runs, so a write that got in between ends the loop with
 * "precondition_failed" instead of a merge (the caller may have computed its change, e.g. a whole
 * offers list, from the version it read).
 */
export async function updateMerchant(
  env: { DB: D1Database; CACHE: KVNamespace },
  id: string,
  change: (current: Merchant) => Omit<Merchant, "updated_at">,
  ifMatch?: VersionPrecondition,
): Promise<MerchantUpdate> {
  for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt++) {
    const row = await selectRow(env.DB, id);
    if (!row) return { status: "not_found" };
    if (ifMatch !== undefined && ifMatch !== "any" && !ifMatch.includes(row.version)) return { status: "precondition_failed", version: row.version };
    const current = fromRow(row);
    const changed = change(current);
    if (sameContent(changed, current)) return { status: "unchanged", merchant: current, version: row.version };
    const next: Merchant = { ...changed, merchant_id: current.merchant_id, created_at: current.created_at, updated_at: nextUpdatedAt(current.updated_at) };
    const res = await env.DB.prepare("UPDATE merchants SET name = ?, tier = ?, config = ?, updated_at = ?, version = version + 1 WHERE id = ? AND version = ?")
      .bind(next.name, next.tier, configOf(next), next.updated_at, id, row.version)
      .run();
    // No row changed: another write moved the version on since the read (or the merchant is gone).
    if ((res.meta.changes ?? 0) === 0) continue;
    forgetOrigins(current.allowed_origins, next.allowed_origins);
    return { status: "updated", merchant: next, version: row.version + 1, cacheCleared: await invalidate(env.CACHE, merchantKey(id)) };
  }
  return { status: "contended" };
}

/**
 * The updated_at of a write: now, but always later than the stored one. The rate limiter orders the
 * configs it is sent by updated_at (src/ratelimit/durableObject.ts), so a write must never look
 * older than, or as old as, the one before it: two PATCHes in one millisecond, or one after a write
 * by a machine whose clock ran ahead, would otherwise have their limits ignored (for up to
 * STALE_CONFIG_MS) or alternate with the previous ones.
 */
function nextUpdatedAt(stored: string): string {
  const previous = Date.parse(stored);
  return new Date(Number.isNaN(previous) ? Date.now() : Math.max(Date.now(), previous + 1)).toISOString();
}

/** Whether two merchants hold the same values (timestamps aside); object keys in any order, list order counts. */
function sameContent(a: Omit<Merchant, "updated_at">, b: Merchant): boolean {
  return a.name === b.name && a.tier === b.tier && stableJson(JSON.parse(configOf(a))) === stableJson(JSON.parse(configOf(b)));
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * Preflights carry no key, so anyone can send them with any Origin: an origin that is not one is
 * answered without storage; an allowed origin is remembered in this isolate for a minute (bounded),
 * so it costs at most one D1 query a minute. A refused one is not remembered, so a merchant allowing
 * it a moment later is granted at once: each such preflight costs one primary-key lookup
 * (merchant_origins, migration 0009), never a scan, as a made-up origin always did (it never
 * repeats, so a memo never spared it); nothing is written to KV on an attacker's behalf.
 */
const ORIGIN_MEMO_MS = 60_000;
const ORIGIN_MEMO_MAX = 2_000;
const originMemo = new Map<string, { ids: string[]; until: number }>();

/** Every merchant id whose allowed_origins holds `origin` (CORS preflight carries no key). */
export async function merchantsAllowingOrigin(db: D1Database, origin: string, now = Date.now()): Promise<string[]> {
  if (!Origin.safeParse(origin).success) return []; // no merchant can allow it (allowed_origins are validated the same way)
  const hit = originMemo.get(origin);
  if (hit && hit.until > now) return hit.ids;
  const { results } = await db.prepare("SELECT merchant_id FROM merchant_origins WHERE origin = ? LIMIT 100").bind(origin).all<{ merchant_id: string }>();
  const ids = results.map((r) => r.merchant_id);
  if (ids.length > 0) setBounded(originMemo, origin, { ids, until: now + ORIGIN_MEMO_MS }, ORIGIN_MEMO_MAX);
  else originMemo.delete(origin);
  return ids;
}

/** A merchant's allowed_origins changed: this isolate reads them anew at once (others within ORIGIN_MEMO_MS). */
function forgetOrigins(...lists: readonly string[][]): void {
  for (const list of lists) for (const origin of list) originMemo.delete(origin);
}
