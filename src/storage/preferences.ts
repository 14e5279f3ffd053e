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
