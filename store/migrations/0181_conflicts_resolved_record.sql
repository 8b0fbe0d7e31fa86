-- The Postgres writer looks up the decided conflicts of a record when a
-- change of it comes no later than its link's version (a webhook delivered
-- after the decision): what a decided conflict took into account opens no
-- second conflict.
CREATE INDEX conflicts_resolved_record ON cdcd.conflicts (system, object, external_id, remote_at)
    WHERE status = 'resolved';
