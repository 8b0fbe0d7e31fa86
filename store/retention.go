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
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, `
			DELETE FROM cdcd.sync_events WHERE id IN (
				SELECT id FROM cdcd.sync_events WHERE at < $1 ORDER BY at LIMIT $2)`, cutoff, pruneChunk)
		if err != nil {
			return total, fmt.Errorf("prune audit events before %s: %w", cutoff.Format(time.RFC3339), err)
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

// RunRetention prunes audit events older than keep now and then every
// interval, until ctx ends; it then returns nil. A failed prune is logged
// and tried again at the next tick.
func (s *Store) RunRetention(ctx context.Context, keep, every time.Duration) error {
	if keep <= 0 || every <= 0 {
		return fmt.Errorf("audit retention: keep (%s) and interval (%s) must be positive", keep, every)
	}
	s.pruneEvery(ctx, every, "audit events", func(ctx context.Context) (int64, error) { return s.PruneAudit(ctx, keep) })
	return nil
}

// RunRecentWritesRetention prunes the recent writes past RecentWindow
// every interval until ctx ends.
func (s *Store) RunRecentWritesRetention(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		return fmt.Errorf("recent writes retention: interval (%s) must be positive", every)
	}
	s.pruneEvery(ctx, every, "recent writes", s.PruneRecentWrites)
	return nil
}

// pruneEvery runs prune now and then every interval until ctx ends,
// logging what it deleted and, as a warning, a failure (tried again at
// the next tick).
func (s *Store) pruneEvery(ctx context.Context, every time.Duration, what string, prune func(context.Context) (int64, error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		start := time.Now()
		n, err := prune(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.log.Warn().Err(err).Int64("deleted", n).Str("table", what).Msg("retention")
		case n > 0:
			s.log.Info().Int64("deleted", n).Str("table", what).Dur("took", time.Since(start)).Msg("rows pruned")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
