-- Population prior by basket size: method_popularity gains the segments `amount:<band>` and
-- `country:<CC>|amount:<band>` next to the device ones of 0002, so a first large basket already
-- leans to BNPL (src/personalization/prior.ts contextPrior). Same trigger otherwise: a duplicate
-- event (skipped by INSERT ... ON CONFLICT DO NOTHING) still fires nothing.

DROP TRIGGER usage_events_aggregate;

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

  -- A statement of its own: D1 caps the terms of one compound SELECT.
  INSERT INTO method_popularity (merchant_id, segment, method_id, weight_ref, uses)
  SELECT NEW.merchant_id, s.segment, NEW.method_id, NEW.recency_ref, 1
  FROM (
    SELECT 'amount:' || NEW.amount_band AS segment WHERE NEW.amount_band IS NOT NULL
    UNION ALL SELECT 'country:' || NEW.location_country || '|amount:' || NEW.amount_band
      WHERE NEW.location_country IS NOT NULL AND NEW.amount_band IS NOT NULL
  ) AS s
  WHERE 1
  ON CONFLICT (merchant_id, segment, method_id) DO UPDATE SET
    weight_ref = weight_ref + excluded.weight_ref,
    uses = uses + 1;

  UPDATE preferences
  SET last_used_at = max(coalesce(last_used_at, ''), NEW.occurred_at)
  WHERE merchant_id = NEW.merchant_id AND customer_ref = NEW.customer_ref;
END;

-- Backfill the new segments from the events still stored (the other segments are already counted).
INSERT INTO method_popularity (merchant_id, segment, method_id, weight_ref, uses)
SELECT merchant_id, segment, method_id, sum(recency_ref), count(*)
FROM (
  SELECT merchant_id, 'amount:' || amount_band AS segment, method_id, recency_ref
  FROM usage_events WHERE amount_band IS NOT NULL
  UNION ALL
  SELECT merchant_id, 'country:' || location_country || '|amount:' || amount_band, method_id, recency_ref
  FROM usage_events WHERE amount_band IS NOT NULL AND location_country IS NOT NULL
)
WHERE 1
GROUP BY merchant_id, segment, method_id
ON CONFLICT (merchant_id, segment, method_id) DO UPDATE SET
  weight_ref = weight_ref + excluded.weight_ref,
  uses = uses + excluded.uses;
