package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Status is where a job stands.
type Status string

const (
	Queued    Status = "queued"
	Running   Status = "running"
	Paused    Status = "paused"
	Done      Status = "done"
	Failed    Status = "failed"
	Cancelled Status = "cancelled"
)

// Finished reports whether a job in status s will not run again unless
// resumed.
func (s Status) Finished() bool { return s == Done || s == Failed || s == Cancelled }

// Job is one row of cdcd.jobs.
type Job struct {
	ID       int64           `json:"id"`
	Kind     string          `json:"kind"`
	Pipeline string          `json:"pipeline,omitempty"`
	Params   json.RawMessage `json:"params,omitempty"`
	Status   Status          `json:"status"`
	// Total is the estimated number of records, nil while unknown.
	Total     *int64          `json:"total,omitempty"`
	Processed int64           `json:"processed"`
	Errors    int64           `json:"errors"`
	Rate      float64         `json:"rate"` // records per second over the last chunk or page
	Cursor    json.RawMessage `json:"cursor,omitempty"`
	Error     string          `json:"error,omitempty"`
	Owner     string          `json:"owner,omitempty"`
	// RequestedBy says who created the job (cli, api, config).
	RequestedBy string     `json:"requested_by,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// Spec is what Create needs.
type Spec struct {
	Kind     string
	Pipeline string
	// Params is the kind's own parameters, any value encoding as a JSON
	// object; nil means none.
	Params      any
	RequestedBy string
}

// Handler runs the jobs of one kind; see the package documentation for
// its contract.
type Handler interface {
	Run(ctx context.Context, job *Job, p Progress) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, job *Job, p Progress) error

// Run calls f.
func (f HandlerFunc) Run(ctx context.Context, job *Job, p Progress) error { return f(ctx, job, p) }

// Progress is a running job's durable state, fenced by its lease.
type Progress interface {
	// Save records, in one write, the cursor to go on from after a crash
	// and the records processed since the last Save. Call it only once
	// those records are durable downstream. It returns ErrLost when the job
	// is no longer this runner's.
	Save(ctx context.Context, cursor any, processed int64) error
	// SetTotal records the estimated number of records.
	SetTotal(ctx context.Context, total int64) error
	// RecordError keeps one record's failure (record names it: its key or
	// external id; deadLetter is the dead letter holding it, or 0) and
	// counts it in the job's errors.
	RecordError(ctx context.Context, record string, err error, deadLetter int64) error
}

// ErrLost means the job was cancelled, paused or taken by another runner
// after its lease lapsed: the handler must stop.
var ErrLost = errors.New("job is no longer held by this runner")

// ErrNotFound reports a job id that does not exist.
var ErrNotFound = errors.New("job not found")

// ErrState reports a change the job's status does not allow (resuming a
// job that is done, cancelling one that finished).
var ErrState = errors.New("job status does not allow this")
