package store

import (
	"context"
	"fmt"
	"time"
)

// pruneChunk bounds the rows one DELETE removes, so pruning a large
// backlog never holds locks or a transaction for long.
const pruneChunk = 5000

// PruneAudit deletes audit events older than olderThan, in chunks of
// bounded size, each in its own transaction, and returns how many it
// deleted. When ctx ends it stops between chunks and returns what it
// deleted so far with ctx's error.
func (s *Store) PruneAudit(ctx context.Context, olderThan time.Duration) (int64, error) {
	cutoff := time.Now().Add(-olderThan)
	n, err := s.pruneChunks(ctx, `DELETE FROM cdcd.sync_events WHERE id IN (
		SELECT id FROM cdcd.sync_events WHERE at < $1 ORDER BY at LIMIT $2)`, cutoff)
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("prune audit events before %s: %w", cutoff.Format(time.RFC3339), err)
	}
	return n, err
}

// PruneDeadLetters deletes the dead letters resolved (replayed or
// discarded) before olderThan ago, in chunks like PruneAudit. A letter
// still dead or being replayed is kept, however old.
func (s *Store) PruneDeadLetters(ctx context.Context, olderThan time.Duration) (int64, error) {
	cutoff := time.Now().Add(-olderThan)
	n, err := s.pruneChunks(ctx, `DELETE FROM cdcd.dead_letters WHERE id IN (
		SELECT id FROM cdcd.dead_letters WHERE resolved_at < $1 ORDER BY resolved_at LIMIT $2)`, cutoff)
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("prune dead letters resolved before %s: %w", cutoff.Format(time.RFC3339), err)
	}
	return n, err
}

// PruneConflicts deletes the conflicts resolved before olderThan ago, in
// chunks like PruneAudit. An open (pending or escalated) conflict is kept,
// however old.
func (s *Store) PruneConflicts(ctx context.Context, olderThan time.Duration) (int64, error) {
	cutoff := time.Now().Add(-olderThan)
	n, err := s.pruneChunks(ctx, `DELETE FROM cdcd.conflicts WHERE id IN (
		SELECT id FROM cdcd.conflicts WHERE status = 'resolved' AND resolved_at < $1 ORDER BY resolved_at LIMIT $2)`, cutoff)
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("prune conflicts resolved before %s: %w", cutoff.Format(time.RFC3339), err)
	}
	return n, err
}

// PruneJobs deletes the jobs that finished (done, failed, cancelled)
// before olderThan ago, and their failed records, in chunks like
// PruneAudit: first the failed records, then the jobs. The latest job of
// each kind, pipeline and requester is kept, however old: it is what
// tells a pipeline's initial snapshot was taken.
func (s *Store) PruneJobs(ctx context.Context, olderThan time.Duration) (int64, error) {
	cutoff := time.Now().Add(-olderThan)
	const old = `SELECT j.id FROM cdcd.jobs j WHERE j.status IN ('done', 'failed', 'cancelled')
		AND coalesce(j.finished_at, j.updated_at) < $1
		AND EXISTS (SELECT 1 FROM cdcd.jobs n WHERE n.kind = j.kind AND n.pipeline IS NOT DISTINCT FROM j.pipeline
			AND n.requested_by IS NOT DISTINCT FROM j.requested_by AND n.id > j.id)`
	n, err := s.pruneChunks(ctx, `DELETE FROM cdcd.job_errors WHERE id IN (
		SELECT id FROM cdcd.job_errors WHERE job_id IN (`+old+`) LIMIT $2)`, cutoff)
	if err == nil {
		var jobs int64
		jobs, err = s.pruneChunks(ctx, `DELETE FROM cdcd.jobs WHERE id IN (`+old+` ORDER BY j.id LIMIT $2)`, cutoff)
		n += jobs
	}
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("prune jobs finished before %s: %w", cutoff.Format(time.RFC3339), err)
	}
	return n, err
}

// pruneChunks runs sql, a DELETE of at most $2 rows older than $1, until
// it deletes fewer, and returns how many rows it deleted.
func (s *Store) pruneChunks(ctx context.Context, sql string, cutoff time.Time) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, sql, cutoff, pruneChunk)
		if err != nil {
			return total, err
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < pruneChunk {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// RunRetention prunes audit events and resolved dead letters older than
// keep now and then every interval, until ctx ends; it then returns nil.
// A failed prune is logged and tried again at the next tick.
func (s *Store) RunRetention(ctx context.Context, keep, every time.Duration) error {
	if keep <= 0 || every <= 0 {
		return fmt.Errorf("audit retention: keep (%s) and interval (%s) must be positive", keep, every)
	}
	s.pruneEvery(ctx, every,
		pruner{"audit events", func(ctx context.Context) (int64, error) { return s.PruneAudit(ctx, keep) }},
		pruner{"resolved dead letters", func(ctx context.Context) (int64, error) { return s.PruneDeadLetters(ctx, keep) }})
	return nil
}

// RunPruning prunes what (rows of one kind, for the log) with prune,
// the rows older than keep, now and then every interval until ctx ends.
func (s *Store) RunPruning(ctx context.Context, what string, keep, every time.Duration, prune func(context.Context, time.Duration) (int64, error)) error {
	if keep <= 0 || every <= 0 {
		return fmt.Errorf("%s retention: keep (%s) and interval (%s) must be positive", what, keep, every)
	}
	s.pruneEvery(ctx, every, pruner{what, func(ctx context.Context) (int64, error) { return prune(ctx, keep) }})
	return nil
}

// pruner prunes one kind of rows, returning how many it deleted.
type pruner struct {
	what  string
	prune func(context.Context) (int64, error)
}

// pruneEvery runs each pruner now and then every interval until ctx
// ends, logging what it deleted and, as a warning, a failure (tried again
// at the next tick).
func (s *Store) pruneEvery(ctx context.Context, every time.Duration, pruners ...pruner) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, p := range pruners {
			start := time.Now()
			n, err := p.prune(ctx)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				s.log.Warn().Err(err).Int64("deleted", n).Str("table", p.what).Msg("retention")
			case n > 0:
				s.log.Info().Int64("deleted", n).Str("table", p.what).Float64("took_seconds", time.Since(start).Seconds()).Msg("rows pruned")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
