-- A restore could commit while the purge was erasing its customer: the purge deleted the rows, the
-- restore (checked against its own request time, still inside the grace period) removed the pending
-- deletion and answered 200, and the mark then found nobody to mark. Nothing erased came back, no
-- purge was audited. The purge now claims its customers first, in one statement, by setting
-- purge_started_at (src/storage/deletions.ts claimDueDeletions), works only on claimed ones, and a
-- restore cancels only a deletion not yet claimed. The column is set only while the deletion is
-- pending (the mark and a reopened tombstone clear it).
ALTER TABLE customer_deletions ADD COLUMN purge_started_at TEXT;
-- The run reads its claimed deletions through this index alone, as it read the due ones before.
DROP INDEX idx_customer_deletions_due;
CREATE INDEX idx_customer_deletions_due ON customer_deletions (purge_after, purge_started_at) WHERE status = 'pending';
