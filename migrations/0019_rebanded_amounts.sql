-- Amount bands of events stored before bands followed ISO 4217 decimals (src/catalog/minor-units.json):
-- until then 3- and 4-decimal currencies (KWD, CLF, ...) were read as hundredths, nine zero-decimal
-- ones (PYG, XPF, ...) too, and HUF/TWD as zero-decimal. Each such event is moved to the band it has
-- now, and the aggregates it fed (method_stats `amount:<band>`, method_popularity `amount:<band>` and
-- `country:<CC>|amount:<band>`) move with it: subtracted from the old band, added to the new one.
-- Contributions of events that retention has already deleted cannot be moved (their amounts are
-- gone). Running it again finds nothing to move. test/api/rebandMigration.test.ts checks the CASE
-- below against amountBand() for every currency of the table.

CREATE TABLE rebanded_events AS
SELECT id, merchant_id, customer_ref, method_id, location_country, recency_ref, occurred_at,
       amount_band AS old_band, new_band
FROM (
  SELECT *,
    CASE
      WHEN normalized < 2000 THEN 0
      WHEN normalized < 10000 THEN 1
      WHEN normalized < 50000 THEN 2
      ELSE 3
    END AS new_band
  FROM (
    SELECT *,
      CASE
        WHEN currency IN ('BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND') THEN amount / 10.0
        WHEN currency IN ('CLF', 'UYW') THEN amount / 100.0
        WHEN currency IN ('BIF', 'DJF', 'GNF', 'KMF', 'PYG', 'RWF', 'UYI', 'VUV', 'XPF') THEN amount * 100.0
        ELSE amount * 1.0 -- HUF, TWD: hundredths
      END AS normalized
    FROM usage_events
    WHERE amount IS NOT NULL AND amount_band IS NOT NULL
      AND currency IN ('BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND', 'CLF', 'UYW',
                       'BIF', 'DJF', 'GNF', 'KMF', 'PYG', 'RWF', 'UYI', 'VUV', 'XPF', 'HUF', 'TWD')
  )
)
WHERE new_band <> old_band;

UPDATE usage_events SET amount_band = (SELECT new_band FROM rebanded_events r WHERE r.id = usage_events.id)
WHERE id IN (SELECT id FROM rebanded_events);

-- method_stats: out of the old band ...
UPDATE method_stats SET weight_ref = weight_ref - d.w, uses = uses - d.n
FROM (
  SELECT merchant_id, customer_ref, 'amount:' || old_band AS bucket, method_id, sum(recency_ref) AS w, count(*) AS n
  FROM rebanded_events GROUP BY 1, 2, 3, 4
) AS d
WHERE method_stats.merchant_id = d.merchant_id AND method_stats.customer_ref = d.customer_ref
  AND method_stats.bucket = d.bucket AND method_stats.method_id = d.method_id;

-- ... whose last use is now that of the events still in it (unchanged when only deleted ones are) ...
UPDATE method_stats SET last_used_at = coalesce((
    SELECT max(e.occurred_at) FROM usage_events e
    WHERE e.merchant_id = method_stats.merchant_id AND e.customer_ref = method_stats.customer_ref
      AND e.method_id = method_stats.method_id AND 'amount:' || e.amount_band = method_stats.bucket
  ), last_used_at)
WHERE (merchant_id, customer_ref, bucket, method_id) IN
  (SELECT merchant_id, customer_ref, 'amount:' || old_band, method_id FROM rebanded_events);

DELETE FROM method_stats WHERE uses <= 0;

-- ... into the new one.
INSERT INTO method_stats (merchant_id, customer_ref, bucket, method_id, weight_ref, uses, last_used_at)
SELECT merchant_id, customer_ref, 'amount:' || new_band, method_id, sum(recency_ref), count(*), max(occurred_at)
FROM rebanded_events
WHERE 1
GROUP BY merchant_id, customer_ref, new_band, method_id
ON CONFLICT (merchant_id, customer_ref, bucket, method_id) DO UPDATE SET
  weight_ref = weight_ref + excluded.weight_ref,
  uses = uses + excluded.uses,
  last_used_at = max(last_used_at, excluded.last_used_at);

-- method_popularity, the same way (it has no last use).
CREATE TABLE rebanded_segments AS
SELECT merchant_id, 'amount:' || old_band AS old_segment, 'amount:' || new_band AS new_segment, method_id, recency_ref
FROM rebanded_events
UNION ALL
SELECT merchant_id, 'country:' || location_country || '|amount:' || old_band,
       'country:' || location_country || '|amount:' || new_band, method_id, recency_ref
FROM rebanded_events WHERE location_country IS NOT NULL;

UPDATE method_popularity SET weight_ref = weight_ref - d.w, uses = uses - d.n
FROM (
  SELECT merchant_id, old_segment AS segment, method_id, sum(recency_ref) AS w, count(*) AS n
  FROM rebanded_segments GROUP BY 1, 2, 3
) AS d
WHERE method_popularity.merchant_id = d.merchant_id AND method_popularity.segment = d.segment
  AND method_popularity.method_id = d.method_id;

DELETE FROM method_popularity WHERE uses <= 0;

INSERT INTO method_popularity (merchant_id, segment, method_id, weight_ref, uses)
SELECT merchant_id, new_segment, method_id, sum(recency_ref), count(*)
FROM rebanded_segments
WHERE 1
GROUP BY merchant_id, new_segment, method_id
ON CONFLICT (merchant_id, segment, method_id) DO UPDATE SET
  weight_ref = weight_ref + excluded.weight_ref,
  uses = uses + excluded.uses;

DROP TABLE rebanded_segments;
DROP TABLE rebanded_events;
