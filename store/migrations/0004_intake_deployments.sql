-- Webhook intake, owned here from now on, and scoped by deployment: each
-- cdcd deployment on the database (its postgres.slot) reads and deletes
-- only its own inbox rows and remembers only its own delivery ids, so two
-- deployments never take each other's changes. The tables were created by
-- the intake itself before; rows from then belong to no deployment ('')
-- until a deployment receiving their system adopts them.

CREATE TABLE IF NOT EXISTS cdcd.webhook_deliveries (
    system      text        NOT NULL,
    delivery_id text        NOT NULL,
    accepted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (system, delivery_id)
);
ALTER TABLE cdcd.webhook_deliveries ADD COLUMN deployment text NOT NULL DEFAULT '';
ALTER TABLE cdcd.webhook_deliveries DROP CONSTRAINT webhook_deliveries_pkey,
    ADD CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (deployment, system, delivery_id);
CREATE INDEX webhook_deliveries_accepted_idx ON cdcd.webhook_deliveries (deployment, accepted_at);
COMMENT ON TABLE cdcd.webhook_deliveries IS
    'Webhook delivery ids accepted, per deployment, so a redelivery is dropped. Pruned by age.';
COMMENT ON COLUMN cdcd.webhook_deliveries.deployment IS 'The deployment that accepted it: its postgres.slot.';

CREATE TABLE IF NOT EXISTS cdcd.inbox (
    id          bigserial   PRIMARY KEY,
    system      text        NOT NULL,
    delivery_id text        NOT NULL,
    key         bytea       NOT NULL,
    envelope    bytea       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE cdcd.inbox ADD COLUMN deployment text NOT NULL DEFAULT '';
CREATE INDEX inbox_deployment_idx ON cdcd.inbox (deployment, id);
COMMENT ON TABLE cdcd.inbox IS
    'Webhook changes accepted and not yet delivered (in-process bus), in arrival order per deployment.';
COMMENT ON COLUMN cdcd.inbox.deployment IS 'The deployment that accepted it and alone delivers it: its postgres.slot.';
