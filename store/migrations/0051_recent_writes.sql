-- The field values cdcd wrote to systems' records lately, shared by every
-- process of a deployment: a webhook reporting one of them back is an echo
-- even when another process made the write (split mode), a later write
-- moved the link's base on, or the process restarted.
CREATE TABLE cdcd.recent_writes (
    id          bigserial   PRIMARY KEY,
    system      text        NOT NULL,
    object      text        NOT NULL,
    external_id text        NOT NULL,
    fields      jsonb       NOT NULL CHECK (jsonb_typeof(fields) = 'object'),
    written_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recent_writes_record_idx ON cdcd.recent_writes (system, object, external_id, written_at DESC);
CREATE INDEX recent_writes_written_at_idx ON cdcd.recent_writes (written_at);
COMMENT ON TABLE cdcd.recent_writes IS
    'Field values cdcd wrote to a system''s record, read for echo suppression for 15 minutes, then pruned.';
