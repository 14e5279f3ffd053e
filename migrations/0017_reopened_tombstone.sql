-- A purged customer who comes back can be erased again: the tombstone is reopened as a pending
-- deletion (src/storage/deletions.ts requestDeletion). It used to drop its purged_at, and a restore
-- of the new deletion deleted the row: the record of the first purge was gone, so an event received
-- before that purge and still on the queue (a retry, a re-driven dead letter) was stored after all
-- (src/storage/events.ts purgedAtOrAfter), and the export said `active` where nothing had come
-- back. The reopened row now keeps the tombstone it was, as JSON {requested_at, purge_after,
-- purged_at}, a restore puts that tombstone back, and a purge clears it.
ALTER TABLE customer_deletions ADD COLUMN reopened_from TEXT;
