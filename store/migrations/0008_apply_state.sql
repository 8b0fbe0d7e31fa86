-- The apply state of inbound changes, owned here from now on. The Postgres
-- writer made this table itself before, and added fields later: a table it
-- made is kept with its rows, and gains fields if it lacks it.

CREATE TABLE IF NOT EXISTS cdcd.apply_state (
    system     text NOT NULL,
    table_name text NOT NULL,
    key        text NOT NULL,
    version    timestamptz,
    event_id   text NOT NULL DEFAULT '',
    deleted_at timestamptz,
    fields     jsonb,
    PRIMARY KEY (system, table_name, key)
);
ALTER TABLE cdcd.apply_state ADD COLUMN IF NOT EXISTS fields jsonb;
COMMENT ON TABLE cdcd.apply_state IS
    'Per system, local table and record: the newest change applied, each column''s last change, and a delete''s tombstone, so a late change never undoes a newer one. Tombstones are pruned after the pipeline''s tombstone_ttl.';
COMMENT ON COLUMN cdcd.apply_state.key IS 'The system''s record key, or the JSON of the match values.';
COMMENT ON COLUMN cdcd.apply_state.version IS 'The system''s time of the newest change applied; NULL when it reports none.';
COMMENT ON COLUMN cdcd.apply_state.event_id IS 'The id of the newest change applied: orders changes of the same version.';
COMMENT ON COLUMN cdcd.apply_state.deleted_at IS 'When the record''s delete was applied; NULL while it lives.';
COMMENT ON COLUMN cdcd.apply_state.fields IS
    'Per local column, [version, event id] of the change that last set it; NULL in a state kept before there were per-column stamps.';
