-- A conversion row is read under two times: its decision’s hour (conversion rollups bucket by
-- decided_at) and its payment’s hour (the payments aggregate joins it by event id for the arm).
-- Retention deleted it by occurred_at alone, so a payment sent with an old occurred_at and a fresh
-- decision_id lost its conversion from the decision’s hour while that decision was still kept and
-- its hour rebuildable. It now goes once both times are past the raw horizon
-- (src/analytics/retention.ts), found through this index on the later of the two.
CREATE INDEX idx_analytics_conversions_last_time ON analytics_conversions (max(decided_at, occurred_at));
DROP INDEX idx_analytics_conversions_retention;
