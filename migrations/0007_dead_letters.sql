-- Dead letters: messages the feedback and analytics consumers gave up on (max_retries), moved by the
-- queue to its dead-letter queue and stored here by the dead-letter consumer, because a queue keeps
-- a message only a few days. Ops lists, re-drives or discards them (/v1/admin/dead-letters).
-- `queue` is the ORIGINAL queue family, `message_id` is the dead-letter delivery’s id (UNIQUE: a
-- redelivered dead letter is stored once). Bodies hold pseudonyms only (customer_ref), never a
-- customer id, `customer_ref` is copied out for the purge. AUTOINCREMENT: an id is never reused, so
-- an id ops read in a listing names the same letter when they re-drive or delete it.
CREATE TABLE dead_letters (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  queue         TEXT NOT NULL CHECK (queue IN ('feedback', 'analytics')),
  message_id    TEXT NOT NULL UNIQUE,
  merchant_id   TEXT,
  customer_ref  TEXT,
  body          TEXT NOT NULL,              -- the message body as JSON text
  truncated     INTEGER NOT NULL DEFAULT 0 CHECK (truncated IN (0, 1)),  -- 1: body is not the whole original (cut, or not JSON)
  attempts      INTEGER NOT NULL,
  received_at   TEXT NOT NULL
);
CREATE INDEX idx_dead_letters_queue ON dead_letters (queue, id);
CREATE INDEX idx_dead_letters_received ON dead_letters (received_at);
CREATE INDEX idx_dead_letters_customer ON dead_letters (customer_ref) WHERE customer_ref IS NOT NULL;
