package imports

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/jobs"
)

// Kind is the jobs kind of imports.
const Kind = "import"

// Source is what an inbound pipeline imports: its system's object and the
// fields it maps, listed by the system's writer.
type Source struct {
	System, Object string
	Fields         []string
	Lister         Lister
}

// Handler runs import jobs (jobs.Handler): a job's Pipeline names an
// inbound pipeline of Sources, whose records go to Intake. Its cursor is
// {"next": "<the system's cursor>"} while pages remain and {"done": true}
// once the last page is durable, so a job taken up after a crash at its
// very end does not start over.
type Handler struct {
	Sources map[string]Source // by pipeline name
	Intake  Intake
	Log     zerolog.Logger
}

var _ jobs.Scoper = (*Handler)(nil)

// Pipelines returns the pipelines this handler imports (jobs.Scoper): an
// import of another is left to a cdcd that has it.
func (h *Handler) Pipelines() []string { return slices.Sorted(maps.Keys(h.Sources)) }

// cursor is an import job's saved position.
type cursor struct {
	Next string `json:"next,omitempty"`
	Done bool   `json:"done,omitempty"`
}

// Run implements jobs.Handler.
func (h *Handler) Run(ctx context.Context, job *jobs.Job, p jobs.Progress) error {
	src, ok := h.Sources[job.Pipeline]
	if !ok {
		return cdc.Permanent(fmt.Errorf("import: %q is not an inbound pipeline whose system can list its records (hubspot, salesforce, shopify with a location_id, or http with a list: section)", job.Pipeline))
	}
	if h.Intake == nil {
		return fmt.Errorf("import: this cdcd has no intake to hand records to; run the import where webhooks are received (role all or capture)")
	}
	var at cursor
	if len(job.Cursor) > 0 && string(job.Cursor) != "null" {
		if err := json.Unmarshal(job.Cursor, &at); err != nil {
			return cdc.Permanent(fmt.Errorf("import: the job's cursor %s is not an import's: %w", job.Cursor, err))
		}
	}
	if at.Done {
		return nil
	}
	// A job lost (paused, cancelled, taken by another cdcd) stops the
	// import at once; other errors of the store are retried.
	lost := func(err error) error {
		if errors.Is(err, jobs.ErrLost) {
			return cdc.Permanent(err)
		}
		return err
	}
	cfg := Config{System: src.System, Object: src.Object, Fields: src.Fields, Job: strconv.FormatInt(job.ID, 10),
		Reject: func(ctx context.Context, record string, err error) error {
			return lost(p.RecordError(ctx, record, err, 0))
		}}
	return Run(ctx, cfg, src.Lister, h.Intake, at.Next, func(ctx context.Context, next string, n int) error {
		return lost(p.Save(ctx, cursor{Next: next, Done: next == ""}, int64(n)))
	}, h.Log.With().Str("pipeline", job.Pipeline).Logger())
}
