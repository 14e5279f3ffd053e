-- The rollup job rebuilds an hour for every merchant dirty on it at once (set-based), so it looks the
-- dirty marks up by hour, the primary key (merchant_id, hour) serves the per-merchant triggers only.
CREATE INDEX idx_analytics_dirty_hours_hour ON analytics_dirty_hours (hour, merchant_id);
