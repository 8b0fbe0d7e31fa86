-- A job that becomes queued (created, resumed, handed back by a stopping
-- cdcd) is announced on channel cdcd_jobs, its kind as the payload, so
-- that idle runners (LISTEN cdcd_jobs) take it at once instead of at
-- their next poll. Notifications are sent on commit; a runner not
-- listening then still finds the job when it polls.
CREATE FUNCTION cdcd.jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cdcd_jobs', NEW.kind);
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_notify AFTER INSERT OR UPDATE OF status ON cdcd.jobs
    FOR EACH ROW WHEN (NEW.status = 'queued') EXECUTE FUNCTION cdcd.jobs_notify();
