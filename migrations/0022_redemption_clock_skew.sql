-- Offer redemptions allow for a merchant clock that runs behind ours (docs/analytics.md).
-- Before: an impression was redeemed only by a payment whose occurred_at (the merchant’s clock, or
-- receipt time) was at or after shown_at (our clock, when /offers answered), so a merchant whose
-- clock ran 3 s behind lost every redemption paid within those 3 s. Now a payment counts as if it
-- may have happened up to 5 minutes later (the 5 minutes API.md lets occurred_at run ahead): it
-- redeems the latest impression of its offer to its customer at or before occurred_at + 5 minutes,
-- when it occurred no more than 5 minutes before that impression and less than 1 day after it
-- (src/analytics/facts.ts, REDEEMED_IMPRESSION, REDEMPTION_SKEW_MINUTES). The triggers of 0010 mark
-- hours by the old rule, so they are replaced by the same triggers with the new bound. Keep the
-- `+5 minutes` and `-1 day` below equal to REDEMPTION_SKEW_MINUTES and REDEMPTION_WINDOW.

-- A payment with an offer_id can redeem one impression: the latest one of that offer to that
-- customer at or before occurred_at + 5 minutes, within the window. Its hour is marked (the
-- payment’s own hour is marked by usage_events_analytics_dirty, migration 0005).
DROP TRIGGER IF EXISTS usage_events_offer_dirty;
CREATE TRIGGER usage_events_offer_dirty AFTER INSERT ON usage_events WHEN NEW.offer_id IS NOT NULL
BEGIN
  INSERT OR IGNORE INTO analytics_dirty_hours (merchant_id, hour)
  SELECT merchant_id, substr(shown_at, 1, 13) || ':00:00Z' FROM analytics_offer_impressions
  WHERE merchant_id = NEW.merchant_id AND customer_ref = NEW.customer_ref AND offer_id = NEW.offer_id
    AND shown_at <= strftime('%Y-%m-%dT%H:%M:%fZ', NEW.occurred_at, '+5 minutes')
    AND shown_at > strftime('%Y-%m-%dT%H:%M:%fZ', NEW.occurred_at, '-1 day')
  ORDER BY shown_at DESC, impression_id DESC LIMIT 1;
END;

-- A new impression takes over, from the impression of the same offer and customer just before it,
-- the payments that occurred from 5 minutes before it on (an impression can arrive after the
-- payment: the two queues race), so that one’s hour is marked too (the new impression’s own hour:
-- analytics_impressions_dirty). Such a payment occurred at most 1 day after the earlier impression
-- and at most 5 minutes before the new one, hence the `-1 day, -5 minutes`.
DROP TRIGGER IF EXISTS analytics_impressions_offer_dirty;
CREATE TRIGGER analytics_impressions_offer_dirty AFTER INSERT ON analytics_offer_impressions WHEN NEW.customer_ref IS NOT NULL
BEGIN
  INSERT OR IGNORE INTO analytics_dirty_hours (merchant_id, hour)
  SELECT merchant_id, substr(shown_at, 1, 13) || ':00:00Z' FROM analytics_offer_impressions
  WHERE merchant_id = NEW.merchant_id AND customer_ref = NEW.customer_ref AND offer_id = NEW.offer_id
    AND (shown_at < NEW.shown_at OR (shown_at = NEW.shown_at AND impression_id < NEW.impression_id))
    AND shown_at > strftime('%Y-%m-%dT%H:%M:%fZ', NEW.shown_at, '-1 day', '-5 minutes')
  ORDER BY shown_at DESC, impression_id DESC LIMIT 1;
END;

-- Hourly offer rollups built with the old rule are rebuilt with the new one by the next rollup runs
-- (hours before the raw horizon are dropped unbuilt by the rollup job and keep the old count).
INSERT OR IGNORE INTO analytics_dirty_hours (merchant_id, hour)
SELECT DISTINCT merchant_id, bucket FROM analytics_offer_rollups
WHERE grain = 'h' AND bucket >= strftime('%Y-%m-%dT%H:00:00Z', 'now', '-90 days');
