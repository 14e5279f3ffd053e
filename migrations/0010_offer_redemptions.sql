-- Offer redemptions count only offers actually shown (API.md §6, docs/analytics.md).
-- Before: `redeemed` counted every stored payment carrying an offer_id, by the hour it occurred, and
-- offer_id is never checked, so junk or repeated ids made redemption_rate exceed 1. Now an impression
-- (one offer of one /offers answer) is redeemed when a payment of the same customer with that
-- offer_id follows it within 1 day and it is the latest such impression before the payment
-- (src/analytics/facts.ts, REDEEMED_IMPRESSION), it counts in the hour the offer was SHOWN, so
-- redeemed <= shown in every bucket. The feedback itself is stored as before, offer_id and all.

-- The redemption lookups: impressions of one customer and offer, by time (it also serves the
-- per-customer purge and export that used the narrower index).
DROP INDEX idx_analytics_impressions_customer;
CREATE INDEX idx_analytics_impressions_customer ON analytics_offer_impressions (merchant_id, customer_ref, offer_id, shown_at);

-- Rollups are rebuilt from raw rows only for dirty hours, so every change of an hour’s answer must
-- mark it. The `-1 day` below is the redemption window of REDEEMED_IMPRESSION, keep them equal.

-- A payment with an offer_id can redeem one impression: the latest one of that offer to that
-- customer at or before it, within the window. Its hour is marked (the payment’s own hour is marked
-- by usage_events_analytics_dirty, migration 0005).
CREATE TRIGGER usage_events_offer_dirty AFTER INSERT ON usage_events WHEN NEW.offer_id IS NOT NULL
BEGIN
  INSERT OR IGNORE INTO analytics_dirty_hours (merchant_id, hour)
  SELECT merchant_id, substr(shown_at, 1, 13) || ':00:00Z' FROM analytics_offer_impressions
  WHERE merchant_id = NEW.merchant_id AND customer_ref = NEW.customer_ref AND offer_id = NEW.offer_id
    AND shown_at <= NEW.occurred_at AND shown_at > strftime('%Y-%m-%dT%H:%M:%fZ', NEW.occurred_at, '-1 day')
  ORDER BY shown_at DESC, impression_id DESC LIMIT 1;
END;

-- A new impression takes over the payments after it from the impression of the same offer and
-- customer just before it (an impression can arrive after the payment: the two queues race), so
-- that one’s hour is marked too (the new impression’s own hour: analytics_impressions_dirty).
CREATE TRIGGER analytics_impressions_offer_dirty AFTER INSERT ON analytics_offer_impressions WHEN NEW.customer_ref IS NOT NULL
BEGIN
  INSERT OR IGNORE INTO analytics_dirty_hours (merchant_id, hour)
  SELECT merchant_id, substr(shown_at, 1, 13) || ':00:00Z' FROM analytics_offer_impressions
  WHERE merchant_id = NEW.merchant_id AND customer_ref = NEW.customer_ref AND offer_id = NEW.offer_id
    AND (shown_at < NEW.shown_at OR (shown_at = NEW.shown_at AND impression_id < NEW.impression_id))
    AND shown_at > strftime('%Y-%m-%dT%H:%M:%fZ', NEW.shown_at, '-1 day')
  ORDER BY shown_at DESC, impression_id DESC LIMIT 1;
END;

-- Hourly offer rollups built with the old rule are rebuilt with the new one by the next rollup runs.
-- Those older than the raw window (90 days) cannot be rebuilt and keep the old rule.
INSERT OR IGNORE INTO analytics_dirty_hours (merchant_id, hour)
SELECT DISTINCT merchant_id, bucket FROM analytics_offer_rollups
WHERE grain = 'h' AND bucket >= strftime('%Y-%m-%dT%H:00:00Z', 'now', '-90 days');
