-- Conflicts: a record changed on both sides since the values they last
-- agreed on (the link's base). Rows are never deleted: a resolved row is
-- the audit of the decision.
CREATE TABLE cdcd.conflicts (
    id          bigserial   PRIMARY KEY,
    pipeline    text        NOT NULL,
    system      text        NOT NULL,               -- the remote system
    object      text        NOT NULL,
    external_id text        NOT NULL,
    local_table text        NOT NULL,
    local_key   text        NOT NULL,               -- JSON of the local primary key
    fields      text[]      NOT NULL,               -- the conflicting fields (the system's names)
    columns     jsonb       NOT NULL DEFAULT '{}',  -- field -> local column, to apply a resolution
    base        jsonb       NOT NULL,
    local       jsonb       NOT NULL,
    remote      jsonb       NOT NULL,
    local_at    timestamptz,
    remote_at   timestamptz,
    remote_version text,
    result      jsonb,                              -- what both sides converge to; null while unresolved
    proposal    jsonb,                              -- a proposed resolution (llm) awaiting a decision
    rule        text        NOT NULL,               -- the rules that decided, or manual
    status      text        NOT NULL CHECK (status IN ('resolved', 'pending', 'escalated')),
    resolved_by text,                               -- "policy", or who resolved it
    resolved_at timestamptz,
    detected_at timestamptz NOT NULL DEFAULT now(),
    notified_at timestamptz
);
CREATE INDEX conflicts_status ON cdcd.conflicts (status, detected_at);
-- At most one open conflict per record: later changes join it.
CREATE UNIQUE INDEX conflicts_open ON cdcd.conflicts (system, object, external_id)
    WHERE status <> 'resolved';
-- Outbound pipelines hold the changes of a record with an open conflict.
CREATE INDEX conflicts_open_record ON cdcd.conflicts (local_table, local_key)
    WHERE status <> 'resolved';
-- Captured in full, so a pipeline from cdcd.conflicts can alert on
-- escalations and reminders (notified_at moves) with before and after.
ALTER TABLE cdcd.conflicts REPLICA IDENTITY FULL;
