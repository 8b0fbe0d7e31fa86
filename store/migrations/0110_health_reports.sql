-- Jobs are judged too: their transitions were refused by the kind check.
ALTER TABLE cdcd.health_transitions DROP CONSTRAINT IF EXISTS health_transitions_kind_check;
ALTER TABLE cdcd.health_transitions ADD CONSTRAINT health_transitions_kind_check
    CHECK (kind IN ('cdcd', 'capture', 'system', 'pipeline', 'jobs'));

-- What each cdcd process of a deployment last found of a subject. Every
-- process reports every evaluation; a subject's transitions are of the
-- worst state among the reports not expired, so that with several
-- processes (split roles, sinks workers in a group) one process finding a
-- pipeline healthy does not resolve what another finds failing. A report
-- expires when its process stops reporting (killed); a process that stops
-- cleanly withdraws its reports.
CREATE TABLE cdcd.health_reports (
    kind       text        NOT NULL,
    name       text        NOT NULL,
    reporter   text        NOT NULL,
    state      text        NOT NULL CHECK (state IN ('ok', 'degraded', 'unhealthy')),
    reason     text        NOT NULL,
    figures    jsonb       NOT NULL DEFAULT '{}',
    since      timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (kind, name, reporter)
);
