-- Jobs: backfills, exports and imports. A job is queued, then leased by one
-- cdcd at a time (owner, lease_until); the runner renews the lease while
-- it works and saves the cursor with the counts after every chunk or page
-- that is durable downstream, so a job whose lease lapsed (its cdcd was
-- killed) is taken again from its last cursor by any cdcd.
CREATE TABLE cdcd.jobs (
    id           bigserial   PRIMARY KEY,
    kind         text        NOT NULL,               -- backfill, export, import
    pipeline     text        NOT NULL DEFAULT '',    -- the pipeline, '' when params name what to run
    params       jsonb       NOT NULL DEFAULT '{}',  -- what the kind's handler needs (table, where, ...)
    status       text        NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued', 'running', 'paused', 'done', 'failed', 'cancelled')),
    total        bigint,                             -- estimated records, null while unknown
    processed    bigint      NOT NULL DEFAULT 0,
    errors       bigint      NOT NULL DEFAULT 0,     -- records that failed (rows in cdcd.job_errors)
    rate         double precision NOT NULL DEFAULT 0, -- records per second over the last chunk or page
    cursor       jsonb,                              -- where to go on from; null before the first chunk
    error        text,                               -- why the job failed
    owner        text,                               -- the cdcd holding the lease
    lease_until  timestamptz,
    requested_by text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_claimable ON cdcd.jobs (id) WHERE status IN ('queued', 'running');
-- Captured in full, so a pipeline from cdcd.jobs can announce a job that
-- finished or failed with before and after.
ALTER TABLE cdcd.jobs REPLICA IDENTITY FULL;

-- Records a job could not process, with why (and the dead letter holding
-- the record, when the pipeline dead-lettered it).
CREATE TABLE cdcd.job_errors (
    id             bigserial   PRIMARY KEY,
    job_id         bigint      NOT NULL REFERENCES cdcd.jobs (id) ON DELETE CASCADE,
    record         text        NOT NULL,             -- the record's key (JSON) or external id
    error          text        NOT NULL,
    dead_letter_id bigint,
    at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_errors_job ON cdcd.job_errors (job_id, id);
