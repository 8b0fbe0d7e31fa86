-- Creates sent to a system whose outcome cdcd has not learnt.

CREATE TABLE cdcd.pending_creates (
    system      text        NOT NULL,
    object      text        NOT NULL,
    local_table text        NOT NULL,
    local_key   text        NOT NULL,
    sent_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (system, object, local_table, local_key)
);
COMMENT ON TABLE cdcd.pending_creates IS
    'Local records whose create was sent to a system without cdcd learning the outcome; the record is looked up there before it is created again.';
COMMENT ON COLUMN cdcd.pending_creates.sent_at IS 'When the first unsettled create was sent.';
