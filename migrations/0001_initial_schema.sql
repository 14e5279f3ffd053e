-- Tap2 Personalize: initial schema.
-- Customer ids are never stored in the clear: `customer_ref` is the keyed HMAC pseudonym
-- (src/crypto/pseudonym.ts). Timestamps are ISO 8601 UTC text ("2026-02-03T15:30:00.000Z"),
-- which sorts and compares correctly as text.

CREATE TABLE merchants (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  tier        TEXT NOT NULL CHECK (tier IN ('starter', 'growth', 'scale')),
  config      TEXT NOT NULL CHECK (json_valid(config)), -- methods, allowed_origins, rate_limit, holdout_percent, features, offers
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);

CREATE TABLE api_keys (
  key_id       TEXT PRIMARY KEY,
  merchant_id  TEXT NOT NULL REFERENCES merchants (id),
  key_hash     TEXT NOT NULL UNIQUE, -- SHA-256 hex of the plain key, the key itself is never stored
  type         TEXT NOT NULL CHECK (type IN ('secret', 'publishable')),
  prefix       TEXT NOT NULL,        -- display prefix, e.g. "tp2_sk_AbC1"
  created_at   TEXT NOT NULL,
  revoked_at   TEXT
);
CREATE INDEX idx_api_keys_merchant ON api_keys (merchant_id, created_at);

CREATE TABLE preferences (
  merchant_id              TEXT NOT NULL,
  customer_ref             TEXT NOT NULL,
  default_method           TEXT,
  favorite_methods         TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(favorite_methods)),
  excluded_methods         TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(excluded_methods)),
  personalization_enabled  INTEGER NOT NULL DEFAULT 1 CHECK (personalization_enabled IN (0, 1)),
  cross_merchant_consent   INTEGER NOT NULL DEFAULT 0 CHECK (cross_merchant_consent IN (0, 1)),
  created_at               TEXT NOT NULL,
  updated_at               TEXT NOT NULL,
  last_used_at             TEXT,
  PRIMARY KEY (merchant_id, customer_ref)
) WITHOUT ROWID;
-- Cross-merchant reads: the same customer at other merchants that hold their consent.
CREATE INDEX idx_preferences_cross ON preferences (customer_ref) WHERE cross_merchant_consent = 1;
-- Retention: preferences unused for 18 months.
CREATE INDEX idx_preferences_last_used ON preferences (coalesce(last_used_at, updated_at));

CREATE TABLE usage_events (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  merchant_id       TEXT NOT NULL,
  event_id          TEXT NOT NULL,   -- the client’s idempotency key, or one we assigned
  customer_ref      TEXT NOT NULL,
  method_id         TEXT NOT NULL,
  amount            INTEGER,
  currency          TEXT,
  device_type       TEXT,
  location_country  TEXT,
  decision_id       TEXT,
  offer_id          TEXT,
  amount_band       INTEGER,         -- basket size class (src/personalization/buckets.ts)
  recency_ref       REAL NOT NULL,   -- 2^((occurred_at - epoch) / half-life): summed, it is a recency-weighted count
  occurred_at       TEXT NOT NULL,
  received_at       TEXT NOT NULL,
  UNIQUE (merchant_id, event_id)
);
CREATE INDEX idx_usage_events_customer ON usage_events (merchant_id, customer_ref, occurred_at);
CREATE INDEX idx_usage_events_occurred ON usage_events (occurred_at);

CREATE TABLE consent_log (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  merchant_id   TEXT NOT NULL,
  customer_ref  TEXT NOT NULL,
  consent_type  TEXT NOT NULL CHECK (consent_type IN ('personalization', 'cross_merchant')),
  action        TEXT NOT NULL CHECK (action IN ('granted', 'revoked')),
  created_at    TEXT NOT NULL
);
CREATE INDEX idx_consent_log_customer ON consent_log (merchant_id, customer_ref, id);
CREATE INDEX idx_consent_log_created ON consent_log (created_at);
