-- Dead letters keep the exact bytes of what could not be delivered. A
-- change may hold what jsonb refuses (\u0000) or what text refuses (invalid
-- UTF-8), and such a change most needs a dead letter; a replay restores
-- the bytes unchanged. jsonb also lost the envelope's column order.
ALTER TABLE cdcd.dead_letters
    ALTER COLUMN record TYPE bytea USING convert_to(record::text, 'UTF8'),
    ALTER COLUMN event  TYPE bytea USING convert_to(event::text, 'UTF8'),
    ADD COLUMN raw_key bytea;
COMMENT ON COLUMN cdcd.dead_letters.record IS 'The mapped record''s fields: JSON, byte for byte.';
COMMENT ON COLUMN cdcd.dead_letters.event IS 'The source event''s envelope: JSON, byte for byte.';
COMMENT ON COLUMN cdcd.dead_letters.local_key IS
    'The key (JSON of the key columns), as text; bytes text cannot hold (NUL, invalid UTF-8) are U+FFFD here and exact in raw_key.';
COMMENT ON COLUMN cdcd.dead_letters.raw_key IS 'The key''s exact bytes when local_key could not hold them; null otherwise.';
