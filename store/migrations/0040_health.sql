-- Health transitions: a pipeline, system, the capture or cdcd as a whole
-- changed state (ok, degraded, unhealthy), with the reason and the figures
-- that caused it. Only changes are stored, not every evaluation.
CREATE TABLE cdcd.health_transitions (
    id          bigserial   PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('cdcd', 'capture', 'system', 'pipeline')),
    name        text        NOT NULL,
    state       text        NOT NULL CHECK (state IN ('ok', 'degraded', 'unhealthy')),
    previous    text        NOT NULL CHECK (previous IN ('ok', 'degraded', 'unhealthy')),
    reason      text        NOT NULL,
    figures     jsonb       NOT NULL DEFAULT '{}',
    at          timestamptz NOT NULL DEFAULT now(),
    -- Moves every health.remind while the state lasts, so that a pipeline
    -- from this table reminds (after.notified_at != before.notified_at).
    notified_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX health_transitions_at ON cdcd.health_transitions (at DESC);
CREATE INDEX health_transitions_subject ON cdcd.health_transitions (kind, name, at DESC);
-- Captured in full, so that alert pipelines see before and after.
ALTER TABLE cdcd.health_transitions REPLICA IDENTITY FULL;
