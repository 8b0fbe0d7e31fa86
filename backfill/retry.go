package backfill

// RetriesLostConnections makes the jobs runner run a backfill again from
// its cursor when its connections to Postgres were cut (jobs.Retrier).
func (h *Handler) RetriesLostConnections() bool { return true }
