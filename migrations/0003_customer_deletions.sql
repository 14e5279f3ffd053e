-- Right to erasure (API.md §3): a deletion request hides the customer at once and is purged
-- after the grace period. One row per merchant x customer, the row itself holds no customer data.
CREATE TABLE customer_deletions (
  merchant_id   TEXT NOT NULL,
  customer_ref  TEXT NOT NULL,
  status        TEXT NOT NULL CHECK (status IN ('pending', 'purged')),
  requested_at  TEXT NOT NULL,
  purge_after   TEXT NOT NULL,
  purged_at     TEXT,
  PRIMARY KEY (merchant_id, customer_ref)
) WITHOUT ROWID;
CREATE INDEX idx_customer_deletions_due ON customer_deletions (purge_after) WHERE status = 'pending';
