-- Links, dead letters and the audit trail. Later migrations add conflicts,
-- webhook dedupe, the inbox and jobs.

CREATE TABLE cdcd.links (
    system      text        NOT NULL,
    object      text        NOT NULL,
    local_table text        NOT NULL,
    local_key   text        NOT NULL,
    external_id text        NOT NULL CHECK (external_id <> ''),
    base        jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(base) = 'object'),
    version     text,
    lsn         pg_lsn,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (system, object, local_table, local_key),
    -- Checked at the end of each statement, so one batched upsert may move an
    -- external id from one local record to another.
    CONSTRAINT links_external_id_key UNIQUE (system, object, external_id)
        DEFERRABLE INITIALLY IMMEDIATE
);
COMMENT ON TABLE cdcd.links IS
    'One row per local record and system: the record''s id in the system and the base version both sides agreed on at the last sync.';
COMMENT ON COLUMN cdcd.links.local_table IS 'Local schema.table.';
COMMENT ON COLUMN cdcd.links.local_key IS 'JSON of the local key columns.';
COMMENT ON COLUMN cdcd.links.base IS 'Mapped field values last written to or received from the system.';
COMMENT ON COLUMN cdcd.links.version IS 'The system''s version or updated-at stamp after the last sync; NULL when it reports none.';
COMMENT ON COLUMN cdcd.links.lsn IS 'Commit LSN of the local change last synced; NULL when the last sync came from the system.';

CREATE TABLE cdcd.dead_letters (
    id          bigserial   PRIMARY KEY,
    pipeline    text        NOT NULL,
    system      text        NOT NULL,
    object      text        NOT NULL,
    local_table text        NOT NULL,
    local_key   text        NOT NULL,
    event_id    text        NOT NULL,
    op          char(1)     NOT NULL CHECK (op IN ('c', 'u', 'd', 'r', 't')),
    record      jsonb,
    event       jsonb,
    error       text        NOT NULL,
    attempts    integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    failed_at   timestamptz NOT NULL DEFAULT now(),
    status      text        NOT NULL DEFAULT 'dead'
                CHECK (status IN ('dead', 'replay', 'replaying', 'replayed', 'discarded')),
    status_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    last_error  text,
    CHECK ((resolved_at IS NOT NULL) = (status IN ('replayed', 'discarded')))
);
COMMENT ON TABLE cdcd.dead_letters IS
    'Changes that could not be delivered (a permanent error or retries exhausted), kept for replay.';
COMMENT ON COLUMN cdcd.dead_letters.record IS 'The mapped record''s fields.';
COMMENT ON COLUMN cdcd.dead_letters.event IS 'The source event''s envelope.';
COMMENT ON COLUMN cdcd.dead_letters.error IS 'The system''s error text at the first failure.';
COMMENT ON COLUMN cdcd.dead_letters.attempts IS 'Delivery attempts so far, replays included.';
COMMENT ON COLUMN cdcd.dead_letters.status IS
    'dead; replay (an operator asked); replaying (a pipeline took it); replayed; discarded.';
COMMENT ON COLUMN cdcd.dead_letters.status_at IS 'When status last changed; a replaying row older than the lease is taken again.';
COMMENT ON COLUMN cdcd.dead_letters.last_error IS 'The error of the last failed replay.';

-- Operator listings by pipeline and status, and the replay pick-up
-- (pipeline, status in replay/replaying, oldest first).
CREATE INDEX dead_letters_pipeline_status_idx ON cdcd.dead_letters (pipeline, status, id);

CREATE TABLE cdcd.sync_events (
    id         bigserial        PRIMARY KEY,
    at         timestamptz      NOT NULL,
    pipeline   text             NOT NULL,
    system     text             NOT NULL,
    object     text             NOT NULL,
    local_key  text             NOT NULL,
    event_id   text             NOT NULL,
    op         char(1)          NOT NULL,
    status     text             NOT NULL
               CHECK (status IN ('delivered', 'retried', 'dead_lettered', 'skipped', 'replayed')),
    attempt    integer          NOT NULL,
    latency_ms double precision NOT NULL,
    error      text
);
COMMENT ON TABLE cdcd.sync_events IS
    'The delivery audit trail: one row per attempt to deliver one record. Pruned by age.';
COMMENT ON COLUMN cdcd.sync_events.local_key IS 'JSON of the local key columns (or the system''s id for inbound records).';

-- Pruning and recent-activity views by time; a record's history by pipeline and key.
CREATE INDEX sync_events_at_idx ON cdcd.sync_events (at);
CREATE INDEX sync_events_pipeline_key_idx ON cdcd.sync_events (pipeline, local_key, at);
