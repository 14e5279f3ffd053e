-- Aggregates that scoring reads, so /methods never scans raw events.
-- Maintained by a trigger on usage_events: a row that INSERT ... ON CONFLICT DO NOTHING skipped
-- (a duplicate event) fires nothing, so redelivery can never count twice.

-- Per customer x merchant x method, overall (`*`) and per context bucket
-- (`device:mobile`, `amount:2`, `country:NL`). weight_ref summed over events is the
-- recency-weighted count, rescaled at read time (src/personalization/recency.ts).
CREATE TABLE method_stats (
  merchant_id   TEXT NOT NULL,
  customer_ref  TEXT NOT NULL,
  bucket        TEXT NOT NULL,
  method_id     TEXT NOT NULL,
  weight_ref    REAL NOT NULL,
  uses          INTEGER NOT NULL,
  last_used_at  TEXT NOT NULL,
  PRIMARY KEY (merchant_id, customer_ref, bucket, method_id)
) WITHOUT ROWID;
CREATE INDEX idx_method_stats_customer ON method_stats (customer_ref);

-- Population prior for cold start: the merchant’s payments by segment
-- (`*`, `country:US`, `device:mobile`, `country:US|device:mobile`). No customer ids.
CREATE TABLE method_popularity (
  merchant_id  TEXT NOT NULL,
  segment      TEXT NOT NULL,
  method_id    TEXT NOT NULL,
  weight_ref   REAL NOT NULL,
  uses         INTEGER NOT NULL,
  PRIMARY KEY (merchant_id, segment, method_id)
) WITHOUT ROWID;

CREATE TRIGGER usage_events_aggregate AFTER INSERT ON usage_events
BEGIN
  INSERT INTO method_stats (merchant_id, customer_ref, bucket, method_id, weight_ref, uses, last_used_at)
  SELECT NEW.merchant_id, NEW.customer_ref, b.bucket, NEW.method_id, NEW.recency_ref, 1, NEW.occurred_at
  FROM (
    SELECT '*' AS bucket
    UNION ALL SELECT 'device:' || NEW.device_type WHERE NEW.device_type IS NOT NULL
    UNION ALL SELECT 'amount:' || NEW.amount_band WHERE NEW.amount_band IS NOT NULL
    UNION ALL SELECT 'country:' || NEW.location_country WHERE NEW.location_country IS NOT NULL
  ) AS b
  WHERE 1
  ON CONFLICT (merchant_id, customer_ref, bucket, method_id) DO UPDATE SET
    weight_ref = weight_ref + excluded.weight_ref,
    uses = uses + 1,
    last_used_at = max(last_used_at, excluded.last_used_at);

  INSERT INTO method_popularity (merchant_id, segment, method_id, weight_ref, uses)
  SELECT NEW.merchant_id, s.segment, NEW.method_id, NEW.recency_ref, 1
  FROM (
    SELECT '*' AS segment
    UNION ALL SELECT 'country:' || NEW.location_country WHERE NEW.location_country IS NOT NULL
    UNION ALL SELECT 'device:' || NEW.device_type WHERE NEW.device_type IS NOT NULL
    UNION ALL SELECT 'country:' || NEW.location_country || '|device:' || NEW.device_type
      WHERE NEW.location_country IS NOT NULL AND NEW.device_type IS NOT NULL
  ) AS s
  WHERE 1
  ON CONFLICT (merchant_id, segment, method_id) DO UPDATE SET
    weight_ref = weight_ref + excluded.weight_ref,
    uses = uses + 1;

  UPDATE preferences
  SET last_used_at = max(coalesce(last_used_at, ''), NEW.occurred_at)
  WHERE merchant_id = NEW.merchant_id AND customer_ref = NEW.customer_ref;
END;
