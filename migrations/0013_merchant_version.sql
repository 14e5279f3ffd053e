-- A merchant PATCH reads the row, merges the change and writes it back. Two PATCHes of different
-- fields racing each other both read the same row, and the second write dropped the first one’s
-- field. `version` makes the write a compare-and-swap: it only applies to the version it was merged
-- from (src/storage/merchants.ts updateMerchant re-reads and merges again otherwise).
ALTER TABLE merchants ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

-- A write that does not bump the version itself (a migration, an operator’s SQL) still counts as a
-- change, so a PATCH merged from the row before it is retried instead of overwriting it. The inner
-- UPDATE sets only `version`, so it fires neither this trigger nor merchants_origins_update.
CREATE TRIGGER merchants_version_bump AFTER UPDATE OF name, tier, config, updated_at ON merchants
WHEN NEW.version = OLD.version
BEGIN
  UPDATE merchants SET version = OLD.version + 1 WHERE id = NEW.id;
END;
