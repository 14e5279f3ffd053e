-- Data rights (API.md §3): who asked for what, when. Records deletion, restore, purge and export
-- of a customer without keeping any of the customer’s data: only the merchant, the pseudonym
-- (`customer_ref`, also kept by the customer_deletions tombstone), the action and the actor.
-- Kept 3 years (like the consent log), then removed by the retention job.
CREATE TABLE data_rights_audit (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  merchant_id   TEXT NOT NULL,
  customer_ref  TEXT NOT NULL,
  action        TEXT NOT NULL CHECK (action IN ('delete', 'restore', 'purge', 'export')),
  actor         TEXT NOT NULL,   -- the API key’s key_id, or `cron` for the scheduled purge
  request_id    TEXT,            -- the API request’s id (NULL for the scheduled purge)
  created_at    TEXT NOT NULL
);
CREATE INDEX idx_data_rights_audit_customer ON data_rights_audit (merchant_id, customer_ref, id);
CREATE INDEX idx_data_rights_audit_created ON data_rights_audit (created_at);

-- Retention: aggregate rows unused for 18 months, purged tombstones older than 3 years.
CREATE INDEX idx_method_stats_last_used ON method_stats (last_used_at);
CREATE INDEX idx_customer_deletions_purged ON customer_deletions (purged_at) WHERE status = 'purged';
