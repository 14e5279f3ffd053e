-- SRM against the holdout_percent in force at each decision, not the merchant’s current one
-- (API.md §6, docs/analytics.md). A merchant that changes holdout_percent inside a window would
-- otherwise see a sample-ratio-mismatch warning for a split that was exactly as configured.
-- The summary’s expected holdout share is the decision-weighted mean of these percents over the
-- window’s decisions with an arm.

-- The percent the decision’s arm was assigned with. NULL: recorded before this migration (or a
-- message queued before it), the summary uses the current percent for those.
ALTER TABLE analytics_decisions ADD COLUMN holdout_percent REAL;

-- Per rollup row: the sum of those percents in millionths of the share (percent × 10,000, rounded,
-- integers, so hourly, daily and raw sums agree exactly) and how many decisions had one. Rows made
-- before this migration have 0 and 0: all their decisions use the current percent.
ALTER TABLE analytics_decision_rollups ADD COLUMN holdout_ppm_sum INTEGER NOT NULL DEFAULT 0;
ALTER TABLE analytics_decision_rollups ADD COLUMN holdout_known INTEGER NOT NULL DEFAULT 0;
