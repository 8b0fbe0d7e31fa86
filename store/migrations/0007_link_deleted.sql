-- A link keeps, after cdcd delivered its record's delete, the id of the
-- record it deleted; deleted says so, so that a change of the same local
-- key creates the record anew instead of updating the deleted one. Links
-- stored before this migration cannot tell a delete's empty base from a
-- create's: they stay live.

ALTER TABLE cdcd.links ADD COLUMN deleted boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN cdcd.links.deleted IS
    'The record''s delete was delivered: external_id names the deleted record, base is empty, and the id is not held against other local records.';
