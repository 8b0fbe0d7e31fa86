package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/jobs/failures"
)

// claim leases the oldest job of one of kinds that is queued, or running
// under a lease that lapsed, to owner. It returns nil when there is none.
func (s *Store) claim(ctx context.Context, owner string, kinds []string, lease time.Duration) (*Job, error) {
	return s.claimScoped(ctx, owner, scope{kinds: kinds}, lease)
}

// scope is what a runner may claim: jobs of kinds, whatever their
// pipeline, and jobs of pairs' kind and pipeline.
type scope struct {
	kinds []string
	pairs struct{ kinds, pipelines []string }
}

func (s *Store) claimScoped(ctx context.Context, owner string, sc scope, lease time.Duration) (*Job, error) {
	j, err := scanJob(s.pool.QueryRow(ctx, `UPDATE cdcd.jobs SET status = 'running', owner = $1,
		lease_until = now() + $3::interval, started_at = coalesce(started_at, now()), updated_at = now()
		WHERE id = (SELECT id FROM cdcd.jobs
			WHERE (kind = ANY($2) OR (kind, pipeline) IN (SELECT * FROM unnest($4::text[], $5::text[])))
				AND (status = 'queued' OR (status = 'running' AND lease_until < now()))
			ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING `+jobColumns, owner, sc.kinds, lease.String(), sc.pairs.kinds, sc.pairs.pipelines))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim a job: %w", err)
	}
	return j, nil
}

// renew extends owner's lease on job id; ErrLost when owner no longer
// holds it running.
func (s *Store) renew(ctx context.Context, id int64, owner string, lease time.Duration) error {
	tag, err := s.pool.Exec(ctx, `UPDATE cdcd.jobs SET lease_until = now() + $3::interval
		WHERE id = $1 AND owner = $2 AND status = 'running'`, id, owner, lease.String())
	return fenced(tag.RowsAffected(), err, "renew lease of job", id)
}

// finish ends owner's run of job id: done when cause is nil, failed with
// its text otherwise.
func (s *Store) finish(ctx context.Context, id int64, owner string, cause error) error {
	status, text := Done, ""
	if cause != nil {
		status, text = Failed, cause.Error()
	}
	tag, err := s.pool.Exec(ctx, `UPDATE cdcd.jobs SET status = $3, error = nullif($4, ''), owner = NULL,
		lease_until = NULL, finished_at = now(), updated_at = now(),
		total = CASE WHEN $3 = 'done' THEN processed ELSE total END
		WHERE id = $1 AND owner = $2 AND status = 'running'`, id, owner, string(status), text)
	return fenced(tag.RowsAffected(), err, "finish job", id)
}

// release gives the job back without finishing it (the process stops): it
// is queued for whichever runner claims it next.
func (s *Store) release(ctx context.Context, id int64, owner string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE cdcd.jobs SET status = 'queued', owner = NULL, lease_until = NULL, updated_at = now()
		WHERE id = $1 AND owner = $2 AND status = 'running'`, id, owner)
	return fenced(tag.RowsAffected(), err, "release job", id)
}

func fenced(rows int64, err error, op string, id int64) error {
	if err != nil {
		return fmt.Errorf("%s %d: %w", op, id, err)
	}
	if rows == 0 {
		return ErrLost
	}
	return nil
}

// progress is a Progress for one run of one job.
type progress struct {
	s     *Store
	id    int64
	owner string
	last  time.Time // of the last Save, for the rate
}

func (p *progress) Save(ctx context.Context, cursor any, processed int64) error {
	b, err := json.Marshal(cursor)
	if err != nil {
		return fmt.Errorf("save cursor of job %d: %w", p.id, err)
	}
	now := time.Now()
	rate := 0.0
	if d := now.Sub(p.last).Seconds(); d > 0 {
		rate = float64(processed) / d
	}
	p.last = now
	tag, err := p.s.pool.Exec(ctx, `UPDATE cdcd.jobs SET cursor = $3, processed = processed + $4, rate = $5, updated_at = now()
		WHERE id = $1 AND owner = $2 AND status = 'running'`, p.id, p.owner, b, processed, rate)
	return fenced(tag.RowsAffected(), err, "save cursor of job", p.id)
}

func (p *progress) SetTotal(ctx context.Context, total int64) error {
	tag, err := p.s.pool.Exec(ctx, `UPDATE cdcd.jobs SET total = $3, updated_at = now()
		WHERE id = $1 AND owner = $2 AND status = 'running'`, p.id, p.owner, total)
	return fenced(tag.RowsAffected(), err, "set total of job", p.id)
}

func (p *progress) RecordError(ctx context.Context, record string, cause error, deadLetter int64) error {
	tx, err := p.s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("record error of job %d: %w", p.id, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	tag, err := tx.Exec(ctx, `SELECT FROM cdcd.jobs WHERE id = $1 AND owner = $2 AND status = 'running' FOR UPDATE`, p.id, p.owner)
	if err := fenced(tag.RowsAffected(), err, "record error of job", p.id); err != nil {
		return err
	}
	if err := failures.Record(ctx, tx, []failures.Failure{{Job: p.id, Record: record, Error: cause.Error(), DeadLetter: deadLetter}}); err != nil {
		return fmt.Errorf("record error of job %d: %w", p.id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("record error of job %d: %w", p.id, err)
	}
	return nil
}
