-- A second reason a consent changes without the customer changing it: `erasure`. When the purge
-- erases a customer (API.md §3), their preferences row goes, so a cross-merchant consent reads as not
-- given and an opt-out of personalization reads as the default (on) from then on. The purge appends
-- those entries in the same D1 batch as the delete, so the log, which outlives the purge as the
-- merchant’s proof of consent, still tells the consent’s whole story.
--
-- SQLite cannot change a column’s CHECK in place: the table is rebuilt with the same columns, rows
-- (ids included, so the order of the log is kept), AUTOINCREMENT counter and indexes.
CREATE TABLE consent_log_new (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  merchant_id   TEXT NOT NULL,
  customer_ref  TEXT NOT NULL,
  consent_type  TEXT NOT NULL CHECK (consent_type IN ('personalization', 'cross_merchant')),
  action        TEXT NOT NULL CHECK (action IN ('granted', 'revoked')),
  created_at    TEXT NOT NULL,
  reason        TEXT CHECK (reason IS NULL OR reason IN ('retention', 'erasure'))
);
INSERT INTO consent_log_new (id, merchant_id, customer_ref, consent_type, action, created_at, reason)
  SELECT id, merchant_id, customer_ref, consent_type, action, created_at, reason FROM consent_log ORDER BY id;
-- AUTOINCREMENT’s counter, so that the id of a row already deleted (retention) is never given again.
UPDATE sqlite_sequence SET seq = max(seq, (SELECT seq FROM sqlite_sequence WHERE name = 'consent_log'))
  WHERE name = 'consent_log_new' AND EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'consent_log');
INSERT INTO sqlite_sequence (name, seq)
  SELECT 'consent_log_new', seq FROM sqlite_sequence WHERE name = 'consent_log'
    AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'consent_log_new');
DROP TABLE consent_log;
ALTER TABLE consent_log_new RENAME TO consent_log;
CREATE INDEX idx_consent_log_customer ON consent_log (merchant_id, customer_ref, id);
CREATE INDEX idx_consent_log_created ON consent_log (created_at);
