-- A record whose write the system answered with an external id another
-- local record's link holds is dead-lettered with that id; delivering the
-- holder's delete marks such letters for replay.
ALTER TABLE cdcd.dead_letters ADD COLUMN claimed_id text;
COMMENT ON COLUMN cdcd.dead_letters.claimed_id IS
    'The external id the record was refused a link to, because another local record held it; null otherwise.';
CREATE INDEX dead_letters_claimed_idx ON cdcd.dead_letters (pipeline, object, claimed_id) WHERE claimed_id IS NOT NULL;
