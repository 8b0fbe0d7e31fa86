-- Retention prunes, in small chunks, dead letters resolved (replayed or
-- discarded) longer ago than audit.retention, and apply states whose
-- tombstone expired; these indexes find them without reading the rest.

CREATE INDEX IF NOT EXISTS dead_letters_resolved_idx ON cdcd.dead_letters (resolved_at) WHERE resolved_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS apply_state_deleted_idx ON cdcd.apply_state (system, table_name, deleted_at) WHERE deleted_at IS NOT NULL;
COMMENT ON COLUMN cdcd.dead_letters.resolved_at IS
    'When the letter was replayed or discarded; resolved letters older than audit.retention are pruned.';
