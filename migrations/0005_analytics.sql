-- Analytics and experiments (API.md §6).
-- Raw facts (kept 90 days, purged with their customer): decisions, conversions, offer impressions.
-- Rollups (kept 25 months, no customer ids): one table per fact, `grain` `h` (hour) or `d` (day),
-- `bucket` the bucket’s start (`2026-02-03T15:00:00Z`). A bucket is recomputed in full from raw
-- rows (DELETE + INSERT ... SELECT in one batch), so recomputing it is idempotent.
-- Time filters use hour prefixes (`2026-02-03T15` <= ts < `2026-02-03T16`), which agree with
-- substr(ts, 1, 13) whatever the timestamp’s precision.

-- One row per /methods answer. decision_key: the signature part of decision_id (unique per decision).
CREATE TABLE analytics_decisions (
  merchant_id      TEXT NOT NULL,
  decision_key     TEXT NOT NULL,
  customer_ref     TEXT,              -- NULL for guests, for the purge only, never exposed
  decided_at       TEXT NOT NULL,
  arm              TEXT CHECK (arm IN ('treatment', 'holdout')),  -- NULL: not in the experiment
  personalized     INTEGER NOT NULL CHECK (personalized IN (0, 1)),
  fallback_reason  TEXT,
  ranked           TEXT NOT NULL CHECK (json_valid(ranked)),
  device_type      TEXT,
  country          TEXT,
  currency         TEXT,
  cache            TEXT CHECK (cache IN ('hit', 'miss')),
  PRIMARY KEY (merchant_id, decision_key)
) WITHOUT ROWID;
CREATE INDEX idx_analytics_decisions_time ON analytics_decisions (merchant_id, decided_at);
CREATE INDEX idx_analytics_decisions_customer ON analytics_decisions (merchant_id, customer_ref);
CREATE INDEX idx_analytics_decisions_retention ON analytics_decisions (decided_at);

-- The first stored feedback event carrying a decision_id (at most one per decision). Arm, rank and
-- decision time come from the verified decision_id, so a conversion never waits for its decision row.
CREATE TABLE analytics_conversions (
  merchant_id      TEXT NOT NULL,
  decision_key     TEXT NOT NULL,
  event_id         TEXT NOT NULL,
  customer_ref     TEXT NOT NULL,
  arm              TEXT CHECK (arm IN ('treatment', 'holdout')),
  fallback_reason  TEXT,
  method_id        TEXT NOT NULL,
  rank             INTEGER NOT NULL,  -- 1-based rank of the paid method in the decision, 0: not in the list
  amount           INTEGER,
  currency         TEXT,
  decided_at       TEXT NOT NULL,
  occurred_at      TEXT NOT NULL,
  ttp_bin          INTEGER NOT NULL,  -- log-scale bin of time to pay (src/analytics/stats.ts)
  PRIMARY KEY (merchant_id, decision_key)
) WITHOUT ROWID;
CREATE INDEX idx_analytics_conversions_time ON analytics_conversions (merchant_id, decided_at);
CREATE INDEX idx_analytics_conversions_event ON analytics_conversions (merchant_id, event_id);
CREATE INDEX idx_analytics_conversions_customer ON analytics_conversions (merchant_id, customer_ref);
CREATE INDEX idx_analytics_conversions_retention ON analytics_conversions (occurred_at);

-- Offers shown by one /offers answer (impression_id is per answer: redelivery stores it once).
CREATE TABLE analytics_offer_impressions (
  merchant_id    TEXT NOT NULL,
  impression_id  TEXT NOT NULL,
  offer_id       TEXT NOT NULL,
  customer_ref   TEXT,
  shown_at       TEXT NOT NULL,
  PRIMARY KEY (merchant_id, impression_id, offer_id)
) WITHOUT ROWID;
CREATE INDEX idx_analytics_impressions_time ON analytics_offer_impressions (merchant_id, shown_at);
CREATE INDEX idx_analytics_impressions_customer ON analytics_offer_impressions (merchant_id, customer_ref);
CREATE INDEX idx_analytics_impressions_retention ON analytics_offer_impressions (shown_at);

-- Payments by method and hour read usage_events by time.
CREATE INDEX idx_usage_events_merchant_occurred ON usage_events (merchant_id, occurred_at);

-- Hours whose rollups are stale. Set by triggers on every raw insert (late conversions included),
-- cleared by the rollup job in the same transaction that recomputes the hour.
CREATE TABLE analytics_dirty_hours (
  merchant_id  TEXT NOT NULL,
  hour         TEXT NOT NULL,  -- `2026-02-03T15:00:00Z`
  PRIMARY KEY (merchant_id, hour)
) WITHOUT ROWID;

CREATE TRIGGER analytics_decisions_dirty AFTER INSERT ON analytics_decisions
BEGIN
  INSERT OR IGNORE INTO analytics_dirty_hours (merchant_id, hour) VALUES (NEW.merchant_id, substr(NEW.decided_at, 1, 13) || ':00:00Z');
END;

CREATE TRIGGER analytics_conversions_dirty AFTER INSERT ON analytics_conversions
BEGIN
  INSERT OR IGNORE INTO analytics_dirty_hours (merchant_id, hour) VALUES (NEW.merchant_id, substr(NEW.decided_at, 1, 13) || ':00:00Z');
  INSERT OR IGNORE INTO analytics_dirty_hours (merchant_id, hour) VALUES (NEW.merchant_id, substr(NEW.occurred_at, 1, 13) || ':00:00Z');
END;

CREATE TRIGGER analytics_impressions_dirty AFTER INSERT ON analytics_offer_impressions
BEGIN
  INSERT OR IGNORE INTO analytics_dirty_hours (merchant_id, hour) VALUES (NEW.merchant_id, substr(NEW.shown_at, 1, 13) || ':00:00Z');
END;

CREATE TRIGGER usage_events_analytics_dirty AFTER INSERT ON usage_events
BEGIN
  INSERT OR IGNORE INTO analytics_dirty_hours (merchant_id, hour) VALUES (NEW.merchant_id, substr(NEW.occurred_at, 1, 13) || ':00:00Z');
END;

-- Rollups. Text dimensions use `` for "none" so they can sit in primary keys.
CREATE TABLE analytics_decision_rollups (
  merchant_id      TEXT NOT NULL,
  grain            TEXT NOT NULL CHECK (grain IN ('h', 'd')),
  bucket           TEXT NOT NULL,
  arm              TEXT NOT NULL,   -- `treatment` | `holdout` | ``
  fallback_reason  TEXT NOT NULL,
  device_type      TEXT NOT NULL,
  country          TEXT NOT NULL,
  currency         TEXT NOT NULL,
  decisions        INTEGER NOT NULL,
  personalized     INTEGER NOT NULL,
  cache_hits       INTEGER NOT NULL,
  cache_misses     INTEGER NOT NULL,
  PRIMARY KEY (merchant_id, grain, bucket, arm, fallback_reason, device_type, country, currency)
) WITHOUT ROWID;

-- Conversions by the hour of their DECISION (conversion rate = conversions / decisions of the bucket).
CREATE TABLE analytics_conversion_rollups (
  merchant_id  TEXT NOT NULL,
  grain        TEXT NOT NULL CHECK (grain IN ('h', 'd')),
  bucket       TEXT NOT NULL,
  arm          TEXT NOT NULL,
  currency     TEXT NOT NULL,   -- the payment’s currency (`` when the event had none)
  rank         INTEGER NOT NULL,  -- rank histogram (0: paid method not in the list)
  conversions  INTEGER NOT NULL,
  amount_n     INTEGER NOT NULL,  -- conversions with an amount and currency
  amount_sum   INTEGER NOT NULL,
  PRIMARY KEY (merchant_id, grain, bucket, arm, currency, rank)
) WITHOUT ROWID;

-- Time-to-pay histogram (log-scale bins): medians merge across buckets.
CREATE TABLE analytics_ttp_rollups (
  merchant_id  TEXT NOT NULL,
  grain        TEXT NOT NULL CHECK (grain IN ('h', 'd')),
  bucket       TEXT NOT NULL,
  arm          TEXT NOT NULL,
  bin          INTEGER NOT NULL,
  n            INTEGER NOT NULL,
  PRIMARY KEY (merchant_id, grain, bucket, arm, bin)
) WITHOUT ROWID;

-- Every stored payment by the hour it OCCURRED, with the arm of the decision it converted (`` if none).
CREATE TABLE analytics_payment_rollups (
  merchant_id  TEXT NOT NULL,
  grain        TEXT NOT NULL CHECK (grain IN ('h', 'd')),
  bucket       TEXT NOT NULL,
  method_id    TEXT NOT NULL,
  arm          TEXT NOT NULL,
  payments     INTEGER NOT NULL,
  PRIMARY KEY (merchant_id, grain, bucket, method_id, arm)
) WITHOUT ROWID;

-- Offers shown (by impression time) and redeemed (payments carrying offer_id, by occurred time).
CREATE TABLE analytics_offer_rollups (
  merchant_id  TEXT NOT NULL,
  grain        TEXT NOT NULL CHECK (grain IN ('h', 'd')),
  bucket       TEXT NOT NULL,
  offer_id     TEXT NOT NULL,
  shown        INTEGER NOT NULL,
  redeemed     INTEGER NOT NULL,
  PRIMARY KEY (merchant_id, grain, bucket, offer_id)
) WITHOUT ROWID;

CREATE INDEX idx_analytics_decision_rollups_retention ON analytics_decision_rollups (bucket);
CREATE INDEX idx_analytics_conversion_rollups_retention ON analytics_conversion_rollups (bucket);
CREATE INDEX idx_analytics_ttp_rollups_retention ON analytics_ttp_rollups (bucket);
CREATE INDEX idx_analytics_payment_rollups_retention ON analytics_payment_rollups (bucket);
CREATE INDEX idx_analytics_offer_rollups_retention ON analytics_offer_rollups (bucket);
