package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/conflict"
)

// ConflictPolicy is what the schedule needs of an inbound pipeline.
type ConflictPolicy struct {
	Policy conflict.Policy
	LLM    conflict.Proposer
	// Remind is how often an escalated conflict's notified_at moves, which
	// a pipeline from cdcd.conflicts turns into a reminder; 0: never.
	Remind time.Duration
}

// ReevaluateConflicts decides the open conflicts of the given pipelines
// again by their current policy (it may have changed, or an llm answer
// may now be usable). A conflict a rule now decides is applied to the
// local row like a resolution and recorded with that rule. It returns how
// many it resolved.
func (s *Store) ReevaluateConflicts(ctx context.Context, policies map[string]ConflictPolicy) (int, error) {
	open, err := s.ListConflicts(ctx, "open", 0)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range open {
		p, ok := policies[c.Pipeline]
		if !ok {
			continue
		}
		d := conflict.Resolve(ctx, c.Input(), p.Policy, p.LLM)
		if !d.Resolved() {
			continue
		}
		done, err := s.settle(ctx, c, d, "policy")
		if err != nil {
			return n, err
		}
		if done {
			n++
		}
	}
	return n, nil
}

// settle applies decision d of open conflict read, unless it was
// resolved meanwhile, or a change of the system joined it since it was
// read (the next evaluation decides with it).
func (s *Store) settle(ctx context.Context, read Conflict, d conflict.Decision, by string) (bool, error) {
	id := read.ID
	settled := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		settled = false
		c, err := lockConflict(ctx, tx, id)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && !c.Open()) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("conflict %d: %w", id, err)
		}
		if !c.Remote.Equal(read.Remote) {
			return nil
		}
		result := pick(d.Result, d.Conflicts)
		if err := applyLocal(ctx, tx, c.LocalTable, c.LocalKey, c.Columns, toLocal(d)); err != nil {
			return fmt.Errorf("conflict %d: %w", id, err)
		}
		if err := knownUpTo(ctx, tx, &c); err != nil {
			return fmt.Errorf("conflict %d: %w", id, err)
		}
		rb, _ := json.Marshal(result)
		if _, err := tx.Exec(ctx, `UPDATE cdcd.conflicts SET status = 'resolved', result = $2, rule = $3, resolved_by = $4, resolved_at = now()
			WHERE id = $1`, id, rb, d.Rule(), by); err != nil {
			return fmt.Errorf("conflict %d: %w", id, err)
		}
		settled = true
		return nil
	})
	return settled && err == nil, err
}

// RemindConflicts moves notified_at of the escalated conflicts of each
// pipeline last notified more than its Remind ago, and returns how many.
func (s *Store) RemindConflicts(ctx context.Context, policies map[string]ConflictPolicy) (int64, error) {
	var total int64
	for name, p := range policies {
		if p.Remind <= 0 {
			continue
		}
		tag, err := s.pool.Exec(ctx, `UPDATE cdcd.conflicts SET notified_at = now()
			WHERE pipeline = $1 AND status = 'escalated' AND (notified_at IS NULL OR notified_at < now() - $2::interval)`,
			name, p.Remind.String())
		if err != nil {
			return total, fmt.Errorf("remind of conflicts of %s: %w", name, err)
		}
		total += tag.RowsAffected()
	}
	return total, nil
}

// RunConflictSchedule re-evaluates open conflicts and sends reminders now
// and then every interval, until ctx ends; failures are logged and tried
// again at the next tick.
func (s *Store) RunConflictSchedule(ctx context.Context, every time.Duration, policies map[string]ConflictPolicy) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := s.ReevaluateConflicts(ctx, policies); err != nil && ctx.Err() == nil {
			s.log.Warn().Err(err).Msg("re-evaluate conflicts")
		} else if n > 0 {
			s.log.Info().Int("resolved", n).Msg("open conflicts decided by their policy")
		}
		if _, err := s.RemindConflicts(ctx, policies); err != nil && ctx.Err() == nil {
			s.log.Warn().Err(err).Msg("remind of escalated conflicts")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
