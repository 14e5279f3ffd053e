-- A write that does not set updated_at itself (an operator’s SQL, a migration) left it as it was, so
-- GET showed the merchant as unchanged since the last PATCH, and the rate limiter, which orders the
-- configs isolates send it by updated_at (src/ratelimit/durableObject.ts), saw the new limits and the
-- still-cached old ones as the same version and took whichever came last for up to a minute. The
-- version trigger of 0013 now also moves updated_at on such a write: to now, or 1 ms past the stored
-- value when that is not earlier than now (the rule of src/storage/merchants.ts nextUpdatedAt). A
-- write that sets updated_at itself keeps its value. The inner UPDATE changes `version`, so this
-- trigger’s WHEN is false for it, and it is not OF id or config, so merchants_origins_update stays quiet.
-- iif, not CASE: remote D1 splits a migration file on its servers and ends a trigger at the first END
-- outside parentheses, so a CASE ... END in the body is "incomplete input" there (workers-sdk#4727),
-- though local D1 applies it (test/api/migrations.test.ts holds every trigger to one END).
DROP TRIGGER IF EXISTS merchants_version_bump;
CREATE TRIGGER merchants_version_bump AFTER UPDATE OF name, tier, config, updated_at ON merchants
WHEN NEW.version = OLD.version
BEGIN
  UPDATE merchants SET
    version = OLD.version + 1,
    updated_at = iif(NEW.updated_at IS NOT OLD.updated_at, NEW.updated_at,
      iif(strftime('%Y-%m-%dT%H:%M:%fZ', 'now') > OLD.updated_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
        strftime('%Y-%m-%dT%H:%M:%fZ', OLD.updated_at, '+0.001 seconds')))
  WHERE id = NEW.id;
END;
