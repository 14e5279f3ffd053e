-- CORS preflights carry no key, so anyone can send one with any Origin. Finding the merchants that
-- allow an origin scanned every merchant’s config (json_each over the table): a flood of preflights
-- with made-up origins cost a full scan each. This table answers it with one primary-key lookup.
-- Triggers keep it equal to merchants.config.allowed_origins, whoever writes the merchant.
CREATE TABLE merchant_origins (
  origin       TEXT NOT NULL,
  merchant_id  TEXT NOT NULL,
  PRIMARY KEY (origin, merchant_id)
) WITHOUT ROWID;
CREATE INDEX idx_merchant_origins_merchant ON merchant_origins (merchant_id);

INSERT OR IGNORE INTO merchant_origins (origin, merchant_id)
SELECT o.value, m.id FROM merchants AS m, json_each(m.config, '$.allowed_origins') AS o;

CREATE TRIGGER merchants_origins_insert AFTER INSERT ON merchants
BEGIN
  INSERT OR IGNORE INTO merchant_origins (origin, merchant_id) SELECT value, NEW.id FROM json_each(NEW.config, '$.allowed_origins');
END;

CREATE TRIGGER merchants_origins_update AFTER UPDATE OF id, config ON merchants
BEGIN
  DELETE FROM merchant_origins WHERE merchant_id = OLD.id;
  INSERT OR IGNORE INTO merchant_origins (origin, merchant_id) SELECT value, NEW.id FROM json_each(NEW.config, '$.allowed_origins');
END;

CREATE TRIGGER merchants_origins_delete AFTER DELETE ON merchants
BEGIN
  DELETE FROM merchant_origins WHERE merchant_id = OLD.id;
END;
