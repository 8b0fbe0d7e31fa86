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

// AddHealthTransition stores t and returns its id.
func (s *Store) AddHealthTransition(ctx context.Context, t HealthTransition) (int64, error) {
	figures, err := json.Marshal(t.Figures)
	if err != nil {
		return 0, fmt.Errorf("store health transition: %w", err)
	}
	var id int64
	err = s.pool.QueryRow(ctx, `INSERT INTO cdcd.health_transitions (kind, name, state, previous, reason, figures, at, notified_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id`,
		t.Kind, t.Name, t.State, t.Previous, t.Reason, figures, t.At).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("store health transition of %s %s: %w", t.Kind, t.Name, err)
	}
	return id, nil
}

// RemindHealth moves the notified_at of transition id to now.
func (s *Store) RemindHealth(ctx context.Context, id int64) error {
	if _, err := s.pool.Exec(ctx, `UPDATE cdcd.health_transitions SET notified_at = now() WHERE id = $1`, id); err != nil {
		return fmt.Errorf("remind health transition %d: %w", id, err)
	}
	return nil
}

// HealthTransitions returns the latest transitions, newest first.
func (s *Store) HealthTransitions(ctx context.Context, limit int) ([]HealthTransition, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, kind, name, state, previous, reason, figures, at
		FROM cdcd.health_transitions ORDER BY at DESC, id DESC LIMIT $1`, limit)
	ts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (HealthTransition, error) {
		var t HealthTransition
		err := r.Scan(&t.ID, &t.Kind, &t.Name, &t.State, &t.Previous, &t.Reason, &t.Figures, &t.At)
		return t, err
	})
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
