-- allowed_origins are stored as a browser serializes its Origin header (canonicalOrigin in
-- src/schemas/merchant.ts: new URL(o).origin, so lowercase scheme and host, no default port, no
-- path). Merchants saved before that keep their spelling in merchants.config and, through the
-- triggers of 0009, in merchant_origins, which a keyless CORS preflight looks up by the exact
-- Origin a browser sends: `https://Shop.Example:443` there matches no browser until the merchant
-- is saved again. This rewrites both to the canonical spelling, as far as SQL can tell it.
--
-- An origin is rewritten only when SQL computes exactly what URL does: scheme http or https,
-- lowercased, a host of [a-z0-9.-], lowercased, a port of digits up to 65535, without leading
-- zeros, dropped when it is the scheme’s default (443, 80) or empty, trailing slashes dropped.
-- Left as written, because URL would turn them into something else or refuse them: a host whose
-- last label is a number (URL parses it as an IPv4 address: 127.1 -> 127.0.0.1) unless it is
-- already a dotted quad like 127.0.0.1, a label starting with xn-- (punycode, validated by URL),
-- a port over 65535, anything not shaped scheme://host[:port]. The API read of a merchant
-- canonicalizes its origins again (src/storage/merchants.ts fromRow), so what it shows does not
-- change, and the next PATCH that changes anything of such a merchant stores them canonical.
-- updated_at is kept (nothing a merchant set changed), the version moves on (0013’s trigger), so a
-- PATCH merged from the row before this is merged again. test/api/originMigration.test.ts.

CREATE TABLE migration_0014_origins AS
WITH
  spelled (legacy) AS (
    SELECT origin FROM merchant_origins
    UNION
    SELECT o.value FROM merchants AS m, json_each(m.config, '$.allowed_origins') AS o WHERE o.type = 'text'
  ),
  lowered AS (
    SELECT legacy, rtrim(lower(legacy), '/') AS o FROM spelled
  ),
  parts AS (
    SELECT legacy, substr(o, 1, instr(o, '://') - 1) AS scheme, substr(o, instr(o, '://') + 3) AS hostport
    FROM lowered WHERE instr(o, '://') > 0
  ),
  split AS (
    SELECT legacy, scheme,
      CASE WHEN instr(hostport, ':') > 0 THEN substr(hostport, 1, instr(hostport, ':') - 1) ELSE hostport END AS host,
      CASE WHEN instr(hostport, ':') > 0 THEN substr(hostport, instr(hostport, ':') + 1) ELSE '' END AS port
    FROM parts
  ),
  -- The host’s last label, one trailing dot ignored (the WHATWG "ends in a number" check).
  labelled AS (
    SELECT legacy, scheme, host, port, substr(bare, length(rtrim(bare, replace(bare, '.', ''))) + 1) AS last_label
    FROM (SELECT *, CASE WHEN host LIKE '_%.' THEN substr(host, 1, length(host) - 1) ELSE host END AS bare FROM split)
  ),
  checked AS (
    SELECT legacy, scheme, host, port,
      scheme IN ('http', 'https')
      AND host <> '' AND host NOT GLOB '*[^a-z0-9.-]*'
      AND ('.' || host) NOT LIKE '%.xn--%'
      AND (port = '' OR (port NOT GLOB '*[^0-9]*' AND CAST(port AS INTEGER) <= 65535))
      AND (
        -- not an IPv4 address to URL
        NOT (last_label <> '' AND (last_label NOT GLOB '*[^0-9]*' OR (last_label GLOB '0x*' AND substr(last_label, 3) NOT GLOB '*[^0-9a-f]*')))
        -- or one already written as URL writes it: four decimal parts 0-255, no leading zeros
        OR (host NOT GLOB '*[^0-9.]*'
          AND length(host) - length(replace(host, '.', '')) = 3
          AND ('.' || host || '.') NOT GLOB '*..*'
          AND ('.' || host) NOT GLOB '*.0[0-9]*'
          AND host NOT GLOB '*[0-9][0-9][0-9][0-9]*'
          AND ('.' || host || '.') NOT GLOB '*.[3-9][0-9][0-9].*'
          AND ('.' || host || '.') NOT GLOB '*.2[6-9][0-9].*'
          AND ('.' || host || '.') NOT GLOB '*.25[6-9].*')
      ) AS ok
    FROM labelled
  )
SELECT legacy,
  CASE WHEN ok THEN scheme || '://' || host ||
    CASE WHEN port = '' OR (scheme = 'https' AND CAST(port AS INTEGER) = 443) OR (scheme = 'http' AND CAST(port AS INTEGER) = 80) THEN ''
    ELSE ':' || CAST(port AS INTEGER) END
  ELSE legacy END AS canonical
FROM checked;

-- merchants.config: each origin canonical, spellings of one origin kept once (where the first
-- was). The merchants_origins_update trigger (0009) then rebuilds the merchant’s merchant_origins.
UPDATE merchants
SET config = json_set(config, '$.allowed_origins', json((
  SELECT json_group_array(origin) FROM (
    SELECT coalesce(c.canonical, o.value) AS origin, min(o.key) AS first_at
    FROM json_each(merchants.config, '$.allowed_origins') AS o
    LEFT JOIN migration_0014_origins AS c ON c.legacy = o.value
    GROUP BY 1
    ORDER BY first_at
  )
)))
WHERE EXISTS (
  SELECT 1 FROM json_each(merchants.config, '$.allowed_origins') AS o
  JOIN migration_0014_origins AS c ON c.legacy = o.value
  WHERE c.canonical <> c.legacy
);

-- merchant_origins rows the trigger did not rebuild (out of step with their merchant’s config):
-- the same rewrite. Spellings that collapse into one origin are one row (the primary key): the
-- canonical row goes in unless it is there, then every rewritten spelling goes.
INSERT OR IGNORE INTO merchant_origins (origin, merchant_id)
SELECT c.canonical, mo.merchant_id
FROM merchant_origins AS mo JOIN migration_0014_origins AS c ON c.legacy = mo.origin
WHERE c.canonical <> c.legacy;

DELETE FROM merchant_origins WHERE origin IN (SELECT legacy FROM migration_0014_origins WHERE canonical <> legacy);

DROP TABLE migration_0014_origins;
