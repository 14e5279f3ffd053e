import { namesMethodFields } from "../personalization/preferences";

/** Stored preferences of one customer at one merchant (table `preferences`). */
export interface StoredPreferences {
  default_method: string | null;
  favorite_methods: string[];
  excluded_methods: string[];
  personalization_enabled: boolean;
  cross_merchant_consent: boolean;
  created_at: string;
  updated_at: string;
  last_used_at: string | null;
}

export interface PreferenceRow {
  default_method: string | null;
  favorite_methods: string;
  excluded_methods: string;
  personalization_enabled: number;
  cross_merchant_consent: number;
  created_at: string;
  updated_at: string;
  last_used_at: string | null;
}

export const PREFERENCE_COLUMNS =
  "default_method, favorite_methods, excluded_methods, personalization_enabled, cross_merchant_consent, created_at, updated_at, last_used_at";

export function fromPreferenceRow(row: PreferenceRow): StoredPreferences {
  return {
    default_method: row.default_method,
    favorite_methods: JSON.parse(row.favorite_methods) as string[],
    excluded_methods: JSON.parse(row.excluded_methods) as string[],
    personalization_enabled: row.personalization_enabled === 1,
    cross_merchant_consent: row.cross_merchant_consent === 1,
    created_at: row.created_at,
    updated_at: row.updated_at,
    last_used_at: row.last_used_at,
  };
}

/** The values a PUT may set; a field left out keeps its stored value. */
export interface PreferencesPatch {
  default_method?: string | null;
  favorite_methods?: string[];
  excluded_methods?: string[];
  personalization_enabled?: boolean;
  cross_merchant_consent?: boolean;
}

/** What a customer without stored preferences has. */
export const DEFAULT_PREFERENCES = { default_method: null, favorite_methods: [], excluded_methods: [], personalization_enabled: true, cross_merchant_consent: false } as const;

/** SQL, 1 or 0: the customer (?1 merchant, ?2 pseudonym) has a pending deletion. */
const PENDING_DELETION = "EXISTS (SELECT 1 FROM customer_deletions WHERE merchant_id = ?1 AND customer_ref = ?2 AND status = 'pending')";

/** Stored preferences (null when none) and whether the customer's deletion is pending, in one batch. */
export async function readPreferences(db: D1Database, merchantId: string, customerRef: string): Promise<{ preferences: StoredPreferences | null; pendingDeletion: boolean }> {
  const [prefs, deletion] = await db.batch<unknown>([
    db.prepare(`SELECT ${PREFERENCE_COLUMNS} FROM preferences WHERE merchant_id = ? AND customer_ref = ?`).bind(merchantId, customerRef),
    db.prepare(`SELECT ${PENDING_DELETION} AS pending`).bind(merchantId, customerRef),
  ]);
  const row = prefs!.results[0] as PreferenceRow | undefined;
  return { preferences: row ? fromPreferenceRow(row) : null, pendingDeletion: (deletion!.results[0] as { pending: number }).pending === 1 };
}

const CONSENT_COLUMNS = [
  ["personalization_enabled", "personalization", 1],
  ["cross_merchant_consent", "cross_merchant", 0],
] as const;

/** The method fields a PUT's rules were judged against: the stored row's, or the defaults' when there was none. */
export interface MethodFields {
  default_method: string | null;
  favorite_methods: readonly string[];
  excluded_methods: readonly string[];
}

/**
 * Writes a preference patch and, in the same D1 batch (one transaction), one consent_log row for
 * each consent flag whose stored value (or default) it changes. The comparison runs inside the
 * batch, so two concurrent PUTs can never both log the same change or miss one.
 *
 * A patch of method fields was validated against `judged` (the default may not be excluded, ...):
 * it is written only while the stored method fields are still those, else nothing is written
 * (consent rows included) and the answer is null, so the caller reads again and judges again. Two
 * concurrent PUTs ({default: visa} and {excluded: [visa]}) can then never store a state that
 * neither checked. Consent flags alone merge freely.
 *
 * Every patch is also written only while the customer's deletion state is still `judgedPending`:
 * a DELETE or a restore committed since the read changes what the PUT may write (all three method
 * fields over the defaults, or a patch of the stored row) and what it may answer, so the caller
 * judges again then too.
 */
export async function savePreferences(
  db: D1Database,
  merchantId: string,
  customerRef: string,
  patch: PreferencesPatch,
  now: string,
  judged: MethodFields,
  judgedPending: boolean,
): Promise<StoredPreferences | null> {
  const namesMethods = namesMethodFields(patch);
  // ?10..?12: the judged method fields (?8, ?9 unused in the consent statements). The stored row must still hold them (or be gone: then the
  // INSERT writes only this patch over the defaults, which is what was judged, or a subset of it).
  // ?13: the judged deletion state, which every statement requires.
  const sameDeletion = `${PENDING_DELETION} = ?13`;
  const unchanged = (row: string) => `(${row}.default_method IS ?10 AND json(${row}.favorite_methods) = json(?11) AND json(${row}.excluded_methods) = json(?12))`;
  const stillJudged = namesMethods
    ? `AND coalesce((SELECT ${unchanged("p")} FROM preferences AS p WHERE p.merchant_id = ?1 AND p.customer_ref = ?2), 1)`
    : "";
  const judgedValues = [judged.default_method, JSON.stringify(judged.favorite_methods), JSON.stringify(judged.excluded_methods), judgedPending ? 1 : 0] as const;
  const statements: D1PreparedStatement[] = [];
  for (const [column, consentType, fallback] of CONSENT_COLUMNS) {
    const value = patch[column];
    if (value === undefined) continue;
    statements.push(
      db
        .prepare(
          `INSERT INTO consent_log (merchant_id, customer_ref, consent_type, action, created_at)
           SELECT ?1, ?2, ?3, ?4, ?5
           WHERE coalesce((SELECT ${column} FROM preferences WHERE merchant_id = ?1 AND customer_ref = ?2), ?6) <> ?7 AND ${sameDeletion} ${stillJudged}`,
        )
        .bind(merchantId, customerRef, consentType, value ? "granted" : "revoked", now, fallback, value ? 1 : 0, null, null, ...judgedValues),
    );
  }
  const values = {
    default_method: patch.default_method === undefined ? DEFAULT_PREFERENCES.default_method : patch.default_method,
    favorite_methods: JSON.stringify(patch.favorite_methods ?? []),
    excluded_methods: JSON.stringify(patch.excluded_methods ?? []),
    personalization_enabled: (patch.personalization_enabled ?? DEFAULT_PREFERENCES.personalization_enabled) ? 1 : 0,
    cross_merchant_consent: (patch.cross_merchant_consent ?? DEFAULT_PREFERENCES.cross_merchant_consent) ? 1 : 0,
  };
  const updates = (Object.keys(values) as (keyof typeof values)[]).filter((k) => patch[k] !== undefined).map((k) => `${k} = excluded.${k}`);
  updates.push("updated_at = excluded.updated_at");
  statements.push(
    db
      .prepare(
        // A new row starts with the customer's last payment here (the usage trigger keeps it from then
        // on): payments stored before the first PUT count as use too, as they would after it.
        // (The SELECT's WHERE also keeps SQLite from reading ON CONFLICT as a join's ON.)
        `INSERT INTO preferences (merchant_id, customer_ref, default_method, favorite_methods, excluded_methods, personalization_enabled,
           cross_merchant_consent, created_at, updated_at, last_used_at)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, (SELECT max(last_used_at) FROM method_stats WHERE merchant_id = ?1 AND customer_ref = ?2)
         WHERE ${sameDeletion}
         ON CONFLICT (merchant_id, customer_ref) DO UPDATE SET ${updates.join(", ")}
         ${namesMethods ? `WHERE ${unchanged("preferences")}` : ""}
         RETURNING ${PREFERENCE_COLUMNS}`,
      )
      .bind(merchantId, customerRef, values.default_method, values.favorite_methods, values.excluded_methods, values.personalization_enabled,
        values.cross_merchant_consent, now, now, ...judgedValues),
  );
  const results = await db.batch<PreferenceRow>(statements);
  const row = results[results.length - 1]!.results[0];
  return row ? fromPreferenceRow(row) : null;
}
