// Package failures keeps the records a job could not process in
// cdcd.job_errors, and counts them in the job's errors: it is the one
// writer of that table.
package failures

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Failure is a record a job could not process.
type Failure struct {
	Job int64
	// Record names the record: its key (JSON) or its external id.
	Record string
	Error  string
	// DeadLetter is the dead letter holding the record, or 0.
	DeadLetter int64
}

// Execer runs a statement: a pool, or a transaction of the caller's.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Record keeps failures in cdcd.job_errors and counts each in its
// job's errors, in one statement on db: in the caller's transaction they
// are kept with what failed (a dead letter) or not at all. A failure of a
// job that no longer exists is dropped. It is the one writer of
// cdcd.job_errors.
func Record(ctx context.Context, db Execer, fs []Failure) error {
	if len(fs) == 0 {
		return nil
	}
	job, record, text, letter := make([]int64, len(fs)), make([]string, len(fs)), make([]string, len(fs)), make([]int64, len(fs))
	for i, f := range fs {
		job[i], record[i], text[i], letter[i] = f.Job, f.Record, f.Error, f.DeadLetter
	}
	_, err := db.Exec(ctx, `
		WITH f AS (
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[]) WITH ORDINALITY
			     AS f(job_id, record, error, dead_letter_id, n)
			WHERE EXISTS (SELECT 1 FROM cdcd.jobs j WHERE j.id = f.job_id)
		), counted AS (
			UPDATE cdcd.jobs j SET errors = j.errors + c.n, updated_at = now()
			FROM (SELECT job_id, count(*) AS n FROM f GROUP BY job_id) c
			WHERE j.id = c.job_id
		)
		INSERT INTO cdcd.job_errors (job_id, record, error, dead_letter_id)
		SELECT job_id, record, error, nullif(dead_letter_id, 0) FROM f ORDER BY n`,
		job, record, text, letter)
	if err != nil {
		return fmt.Errorf("keep %d job errors: %w", len(fs), err)
	}
	return nil
}

// ImportJob returns the import job whose record a change is, from the
// change's delivery id ("import/<job>/<object>/...": see
// sources/imports), or false.
func ImportJob(deliveryID string) (int64, bool) {
	rest, ok := strings.CutPrefix(deliveryID, "import/")
	if !ok {
		return 0, false
	}
	id, _, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(id, 10, 64)
	return n, err == nil && n > 0
}
