package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store reads and changes cdcd.jobs. It is safe for concurrent use. The
// table is created by the store package's migrations.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

const jobColumns = `id, kind, pipeline, params, status, total, processed, errors, rate, cursor,
	coalesce(error, ''), coalesce(owner, ''), requested_by, created_at, started_at, finished_at, updated_at`

func scanJob(row pgx.Row) (*Job, error) {
	var j Job
	var params, cursor []byte
	err := row.Scan(&j.ID, &j.Kind, &j.Pipeline, &params, &j.Status, &j.Total, &j.Processed, &j.Errors, &j.Rate, &cursor,
		&j.Error, &j.Owner, &j.RequestedBy, &j.CreatedAt, &j.StartedAt, &j.FinishedAt, &j.UpdatedAt)
	if err != nil {
		return nil, err
	}
	if string(params) != "{}" {
		j.Params = params
	}
	j.Cursor = cursor
	return &j, nil
}

// Create queues a job and returns it.
func (s *Store) Create(ctx context.Context, spec Spec) (*Job, error) {
	return s.create(ctx, s.pool, spec)
}

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *Store) create(ctx context.Context, q querier, spec Spec) (*Job, error) {
	if spec.Kind == "" {
		return nil, errors.New("create job: kind is empty")
	}
	params := []byte("{}")
	if spec.Params != nil {
		b, err := json.Marshal(spec.Params)
		if err != nil {
			return nil, fmt.Errorf("create job: encode params: %w", err)
		}
		params = b
	}
	j, err := scanJob(q.QueryRow(ctx, `INSERT INTO cdcd.jobs (kind, pipeline, params, requested_by)
		VALUES ($1, $2, $3, $4) RETURNING `+jobColumns, spec.Kind, spec.Pipeline, params, spec.RequestedBy))
	if err != nil {
		return nil, fmt.Errorf("create job: %w", err)
	}
	return j, nil
}

// Get returns one job, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id int64) (*Job, error) {
	j, err := scanJob(s.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM cdcd.jobs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("job %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read job %d: %w", id, err)
	}
	return j, nil
}

// Filter narrows List.
type Filter struct {
	Status   Status // "" for every status
	Kind     string
	Pipeline string
	Limit    int // 0 means 100
}

// List returns jobs, newest first.
func (s *Store) List(ctx context.Context, f Filter) ([]*Job, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, err := s.pool.Query(ctx, `SELECT `+jobColumns+` FROM cdcd.jobs
		WHERE ($1 = '' OR status = $1) AND ($2 = '' OR kind = $2) AND ($3 = '' OR pipeline = $3)
		ORDER BY id DESC LIMIT $4`, string(f.Status), f.Kind, f.Pipeline, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	var out []*Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return out, nil
}

// RecordErr is one row of cdcd.job_errors.
type RecordErr struct {
	ID         int64     `json:"id"`
	Record     string    `json:"record"`
	Error      string    `json:"error"`
	DeadLetter int64     `json:"dead_letter_id,omitempty"`
	At         time.Time `json:"at"`
}

// Errors returns a job's record failures, oldest first, at most limit.
func (s *Store) Errors(ctx context.Context, id int64, limit int) ([]RecordErr, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, record, error, coalesce(dead_letter_id, 0), at
		FROM cdcd.job_errors WHERE job_id = $1 ORDER BY id LIMIT $2`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("list errors of job %d: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RecordErr, error) {
		var e RecordErr
		return e, r.Scan(&e.ID, &e.Record, &e.Error, &e.DeadLetter, &e.At)
	})
	if err != nil {
		return nil, fmt.Errorf("list errors of job %d: %w", id, err)
	}
	return out, nil
}

// Cancel stops a queued, running or paused job for good; its runner stops
// at its next lease renewal.
func (s *Store) Cancel(ctx context.Context, id int64) (*Job, error) {
	return s.transition(ctx, id, Cancelled, []Status{Queued, Running, Paused}, true)
}

// Pause stops a queued or running job until it is resumed.
func (s *Store) Pause(ctx context.Context, id int64) (*Job, error) {
	return s.transition(ctx, id, Paused, []Status{Queued, Running}, false)
}

// Resume queues a paused, failed or cancelled job again; it goes on from
// its cursor.
func (s *Store) Resume(ctx context.Context, id int64) (*Job, error) {
	return s.transition(ctx, id, Queued, []Status{Paused, Failed, Cancelled}, false)
}

func (s *Store) transition(ctx context.Context, id int64, to Status, from []Status, finish bool) (*Job, error) {
	fromText := make([]string, len(from))
	for i, f := range from {
		fromText[i] = string(f)
	}
	j, err := scanJob(s.pool.QueryRow(ctx, `UPDATE cdcd.jobs SET status = $2, owner = NULL, lease_until = NULL,
		error = CASE WHEN $2 = 'queued' THEN NULL ELSE error END,
		finished_at = CASE WHEN $4 THEN now() ELSE NULL END, updated_at = now()
		WHERE id = $1 AND status = ANY($3) RETURNING `+jobColumns, id, string(to), fromText, finish))
	if errors.Is(err, pgx.ErrNoRows) {
		cur, gerr := s.Get(ctx, id)
		if gerr != nil {
			return nil, gerr
		}
		return nil, fmt.Errorf("job %d is %s: %w", id, cur.Status, ErrState)
	}
	if err != nil {
		return nil, fmt.Errorf("set job %d %s: %w", id, to, err)
	}
	return j, nil
}

// CreateOnce queues spec unless a job of its kind, pipeline and requester
// already exists, whatever its status (snapshot: initial backfills a
// pipeline at its first start only). It reports whether it created the
// job. Processes starting together create it once.
func (s *Store) CreateOnce(ctx context.Context, spec Spec) (*Job, bool, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("create job: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('cdcd.jobs ' || $1 || ' ' || $2))`, spec.Kind, spec.Pipeline); err != nil {
		return nil, false, fmt.Errorf("create job: %w", err)
	}
	j, err := scanJob(tx.QueryRow(ctx, `SELECT `+jobColumns+` FROM cdcd.jobs WHERE kind = $1 AND pipeline = $2 AND requested_by = $3
		ORDER BY id LIMIT 1`, spec.Kind, spec.Pipeline, spec.RequestedBy))
	if err == nil {
		return j, false, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, false, fmt.Errorf("create job: %w", err)
	}
	if j, err = s.create(ctx, tx, spec); err != nil {
		return nil, false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, false, fmt.Errorf("create job: %w", err)
	}
	return j, true, nil
}
