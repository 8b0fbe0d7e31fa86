package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// HealthTransition is one row of cdcd.health_transitions: a subject (cdcd,
// the capture, a system or a pipeline) changed state.
type HealthTransition struct {
	ID       int64          `json:"id"`
	Kind     string         `json:"kind"`
	Name     string         `json:"name"`
	State    string         `json:"state"`
	Previous string         `json:"previous"`
	Reason   string         `json:"reason"`
	Figures  map[string]any `json:"figures"`
	At       time.Time      `json:"at"`
}

// HealthReport is what one process found of a subject at its last
// evaluation: the state it reports (held for health.hold), why, and the
// figures behind it.
type HealthReport struct {
	Kind, Name, State, Reason string
	Figures                   map[string]any
	Since                     time.Time
}

// healthLock serialises the processes of a deployment deciding
// transitions, so that two never store the same one.
const healthLock = 0x63646364_6865616c // "cdcdheal"

// ReportHealth stores reporter's reports, valid for ttl unless renewed,
// and stores a transition for each subject whose worst state among the
// reports still valid differs from its latest transition; it returns the
// transitions stored. Every process of a deployment reports, so that one
// finding a pipeline healthy (it holds none of its partitions) never
// resolves what another finds failing, and a subject whose only failing
// reporter was killed returns to what the others find once that report
// expires. With remind > 0 it also moves the notified_at of each lasting
// degraded or unhealthy state every remind.
func (s *Store) ReportHealth(ctx context.Context, reporter string, ttl, remind time.Duration, reports []HealthReport) ([]HealthTransition, error) {
	n := len(reports)
	kinds, names, states, reasons := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	figures, since := make([]string, n), make([]time.Time, n)
	for i, r := range reports {
		f, err := json.Marshal(r.Figures)
		if err != nil {
			return nil, fmt.Errorf("store health report of %s %s: %w", r.Kind, r.Name, err)
		}
		kinds[i], names[i], states[i], reasons[i], figures[i], since[i] = r.Kind, r.Name, r.State, r.Reason, string(f), r.Since
	}
	var out []HealthTransition
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(healthLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO cdcd.health_reports (kind, name, reporter, state, reason, figures, since, expires_at)
			SELECT k, n, $1, s, r, f::jsonb, si, now() + $2::interval
			FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[]) AS u(k, n, s, r, f, si)
			ON CONFLICT (kind, name, reporter) DO UPDATE SET state = excluded.state, reason = excluded.reason,
				figures = excluded.figures, since = excluded.since, expires_at = excluded.expires_at`,
			reporter, ttl, kinds, names, states, reasons, figures, since); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `WITH worst AS (
				SELECT DISTINCT ON (kind, name) kind, name, state, reason, figures FROM cdcd.health_reports
				WHERE expires_at > now()
				ORDER BY kind, name, array_position(ARRAY['unhealthy', 'degraded', 'ok'], state), since, reporter)
			INSERT INTO cdcd.health_transitions (kind, name, state, previous, reason, figures)
			SELECT w.kind, w.name, w.state, coalesce(l.state, 'ok'), w.reason, w.figures
			FROM worst w LEFT JOIN LATERAL (SELECT t.state FROM cdcd.health_transitions t
				WHERE t.kind = w.kind AND t.name = w.name ORDER BY t.at DESC, t.id DESC LIMIT 1) l ON true
			WHERE w.state <> coalesce(l.state, 'ok')
			RETURNING id, kind, name, state, previous, reason, figures, at`)
		var err error
		out, err = pgx.CollectRows(rows, scanTransition)
		if err != nil {
			return err
		}
		if remind > 0 {
			if _, err := tx.Exec(ctx, `UPDATE cdcd.health_transitions t SET notified_at = now()
				FROM (SELECT DISTINCT ON (kind, name) id, state, notified_at FROM cdcd.health_transitions
					ORDER BY kind, name, at DESC, id DESC) l
				WHERE t.id = l.id AND l.state <> 'ok' AND l.notified_at < now() - $1::interval`, remind); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `DELETE FROM cdcd.health_reports WHERE expires_at < now() - interval '1 hour'`)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store health reports: %w", err)
	}
	return out, nil
}

// WithdrawHealth deletes reporter's reports: a process stopping cleanly
// leaves the subjects to the others at once.
func (s *Store) WithdrawHealth(ctx context.Context, reporter string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM cdcd.health_reports WHERE reporter = $1`, reporter); err != nil {
		return fmt.Errorf("withdraw health reports: %w", err)
	}
	return nil
}

func scanTransition(r pgx.CollectableRow) (HealthTransition, error) {
	var t HealthTransition
	err := r.Scan(&t.ID, &t.Kind, &t.Name, &t.State, &t.Previous, &t.Reason, &t.Figures, &t.At)
	return t, err
}

// HealthTransitions returns the latest transitions, newest first.
func (s *Store) HealthTransitions(ctx context.Context, limit int) ([]HealthTransition, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, kind, name, state, previous, reason, figures, at
		FROM cdcd.health_transitions ORDER BY at DESC, id DESC LIMIT $1`, limit)
	ts, err := pgx.CollectRows(rows, scanTransition)
	if err != nil {
		return nil, fmt.Errorf("read health transitions: %w", err)
	}
	return ts, nil
}

// LastHealthStates returns each subject's latest transition, keyed by
// kind and name ("pipeline/contacts"), so that a restart carries on from
// the stored states instead of announcing them again.
func (s *Store) LastHealthStates(ctx context.Context) (map[string]HealthTransition, error) {
	rows, _ := s.pool.Query(ctx, `SELECT DISTINCT ON (kind, name) id, kind, name, state, previous, reason, figures, at
		FROM cdcd.health_transitions ORDER BY kind, name, at DESC, id DESC`)
	out := map[string]HealthTransition{}
	var t HealthTransition
	_, err := pgx.ForEachRow(rows, []any{&t.ID, &t.Kind, &t.Name, &t.State, &t.Previous, &t.Reason, &t.Figures, &t.At}, func() error {
		out[t.Kind+"/"+t.Name] = t
		t = HealthTransition{}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read health states: %w", err)
	}
	return out, nil
}

// PruneHealth deletes transitions older than olderThan, keeping each
// subject's latest, in chunks of bounded size, each in its own
// transaction.
func (s *Store) PruneHealth(ctx context.Context, olderThan time.Duration) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM cdcd.health_transitions WHERE id IN (
			SELECT t.id FROM cdcd.health_transitions t WHERE t.at < now() - $1::interval
			AND EXISTS (SELECT 1 FROM cdcd.health_transitions n WHERE n.kind = t.kind AND n.name = t.name AND n.at > t.at)
			ORDER BY t.at LIMIT $2)`, olderThan, pruneChunk)
		if err != nil {
			return total, fmt.Errorf("prune health transitions: %w", err)
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

// HealthCounts are the figures of cdcd's health that live in its tables.
type HealthCounts struct {
	// DeadLetters waiting (neither replayed nor discarded), by pipeline.
	DeadLetters map[string]int64
	// FailedJobs ended in failure in the last day; -1 when this database
	// has no cdcd.jobs.
	FailedJobs int64
}

// HealthCounts counts what the health rules judge in cdcd's tables.
func (s *Store) HealthCounts(ctx context.Context) (HealthCounts, error) {
	c := HealthCounts{DeadLetters: map[string]int64{}, FailedJobs: -1}
	rows, _ := s.pool.Query(ctx, `SELECT pipeline, count(*) FROM cdcd.dead_letters
		WHERE status IN ('dead', 'replay', 'replaying') GROUP BY pipeline`)
	var p string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&p, &n}, func() error { c.DeadLetters[p] = n; return nil }); err != nil {
		return c, fmt.Errorf("count dead letters: %w", err)
	}
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM cdcd.jobs WHERE status = 'failed' AND coalesce(finished_at, updated_at) > now() - interval '1 day'`).Scan(&c.FailedJobs)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "42P01" || pe.Code == "42703") { // no cdcd.jobs (yet), or not this shape
		c.FailedJobs = -1
		err = nil
	}
	if err != nil {
		return c, fmt.Errorf("count failed jobs: %w", err)
	}
	return c, nil
}

// JobProgress is a job as the status page shows it.
type JobProgress struct {
	ID        int64     `json:"id"`
	Kind      string    `json:"kind"`
	Pipeline  string    `json:"pipeline,omitempty"`
	Status    string    `json:"status"`
	Processed int64     `json:"processed"`
	Total     *int64    `json:"total,omitempty"`
	Errors    int64     `json:"errors"`
	Rate      float64   `json:"rate"`
	Error     string    `json:"error,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// JobsInProgress returns the jobs queued, running or paused, and those
// that finished in the last day, newest first; none when this database
// has no cdcd.jobs.
func (s *Store) JobsInProgress(ctx context.Context, limit int) ([]JobProgress, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, kind, pipeline, status, processed, total, errors, rate, coalesce(error, ''), updated_at
		FROM cdcd.jobs WHERE status IN ('queued', 'running', 'paused') OR updated_at > now() - interval '1 day'
		ORDER BY status IN ('queued', 'running', 'paused') DESC, id DESC LIMIT $1`, limit)
	js, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (JobProgress, error) {
		var j JobProgress
		err := r.Scan(&j.ID, &j.Kind, &j.Pipeline, &j.Status, &j.Processed, &j.Total, &j.Errors, &j.Rate, &j.Error, &j.UpdatedAt)
		return j, err
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read jobs: %w", err)
	}
	return js, nil
}
