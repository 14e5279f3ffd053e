-- Retention removes preferences "18 months after last use" (API.md §3). Last use was read as the
-- last payment, else the last change (coalesce(last_used_at, updated_at)): a customer whose last
-- payment was 19 months ago but who set exclusions, or granted cross-merchant consent, yesterday lost
-- that row in the next daily run, the new consent logged as lapsed. Last use is now the later of the
-- two (src/storage/deletions.ts LAST_USE), the index follows the expression, so the daily job still
-- reads the expired rows in index order.
DROP INDEX idx_preferences_last_used;
CREATE INDEX idx_preferences_last_use ON preferences (max(coalesce(last_used_at, updated_at), updated_at));
