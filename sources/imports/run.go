package imports

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/sources/webhook"
)

// Intake makes changes durable before Accept returns (webhook.Acceptor:
// cdcd.inbox, or the Kafka producer).
type Intake interface {
	Accept(ctx context.Context, system string, changes []webhook.Change) error
}

// Defaults.
const (
	DefaultMaxAttempts = 10
	DefaultBackoffMin  = time.Second
	DefaultBackoffMax  = time.Minute
)

// Config says what an import lists. Zero sizes mean the defaults.
type Config struct {
	// System is Source and Schema of the changes: the system's name.
	System string
	// Object is the system's object listed (contacts), the changes' Table.
	Object string
	// Fields are the fields asked for; nil asks for the system's default.
	Fields []string
	// Job names the import in the changes' delivery ids, so a page listed
	// again by the same job is dropped by the intake and another job
	// applies the records anew.
	Job string
	// MaxAttempts bounds the attempts of one page (listing or handing it
	// to the intake) before Run gives up.
	MaxAttempts int
	// BackoffMin and BackoffMax bound the wait between attempts, which
	// doubles from the first; a system's Retry-After waits longer.
	BackoffMin, BackoffMax time.Duration
}

// Progress is told, once a page is durable in the intake, the cursor of
// the next page ("" after the last) and how many records the page held.
// Storing next resumes the import there. An error stops Run.
type Progress func(ctx context.Context, next string, records int) error

// Run lists cfg.Object from cursor to the last page, hands each page to
// in as changes and reports each to save. It returns nil once the last
// page was saved; a page that still fails after MaxAttempts, an error of
// save, or the end of ctx stops it with an error, the cursor of the first
// page not saved being where it resumes. Listing the next page overlaps
// with handing over the current one.
//
// Each record becomes a change with op "r" (a snapshot read), Key
// {"id": "<id>"}, After its fields, CommitTime its UpdatedAt, and
// DeliveryID "import/<job>/<object>/<id>/<updated at, Unix ms>".
func Run(ctx context.Context, cfg Config, l Lister, in Intake, cursor string, save Progress, log zerolog.Logger) error {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = DefaultBackoffMin
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = max(DefaultBackoffMax, cfg.BackoffMin)
	}
	log = log.With().Str("component", "import").Str("system", cfg.System).Str("object", cfg.Object).Str("job", cfg.Job).Logger()
	pages := make(chan Page) // one page listed ahead of the one handed over, no more
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(pages)
		at := cursor
		// Cursors listed in this run: a system whose next cursor leads
		// back to one of them would be listed forever.
		seen := map[string]bool{}
		for {
			seen[at] = true
			var p Page
			err := retry(gctx, cfg, log, "list", func() (err error) {
				p, err = l.List(gctx, cfg.Object, cfg.Fields, at)
				return err
			})
			if err != nil {
				return fmt.Errorf("list %s of %s: %w", cfg.Object, cfg.System, err)
			}
			if p.Next != "" && seen[p.Next] {
				return cdc.Permanent(fmt.Errorf("list %s of %s: the page at cursor %q names %q as the next one, which was listed already", cfg.Object, cfg.System, at, p.Next))
			}
			select {
			case pages <- p:
			case <-gctx.Done():
				return gctx.Err()
			}
			if p.Next == "" {
				return nil
			}
			at = p.Next
		}
	})
	g.Go(func() error {
		for p := range pages {
			changes := cfg.changes(p.Records)
			err := retry(gctx, cfg, log, "hand over", func() error { return in.Accept(gctx, cfg.System, changes) })
			if err != nil {
				return fmt.Errorf("hand %d %s of %s to the intake: %w", len(changes), cfg.Object, cfg.System, err)
			}
			if err := save(gctx, p.Next, len(p.Records)); err != nil {
				return fmt.Errorf("save the import's cursor: %w", err)
			}
			log.Debug().Int("records", len(p.Records)).Bool("last", p.Next == "").Msg("page imported")
		}
		return nil
	})
	return g.Wait()
}

// changes turns a page's records into changes.
func (cfg *Config) changes(recs []Record) []webhook.Change {
	out := make([]webhook.Change, 0, len(recs))
	for _, r := range recs {
		if r.ID == "" {
			continue // nothing to link or match it by
		}
		did := "import/" + cfg.Job + "/" + cfg.Object + "/" + r.ID + "/" + strconv.FormatInt(r.UpdatedAt.UnixMilli(), 10)
		if r.UpdatedAt.IsZero() {
			did = "import/" + cfg.Job + "/" + cfg.Object + "/" + r.ID
		}
		out = append(out, webhook.Change{Kind: "import", Event: cdc.Event{
			Op:         cdc.OpRead,
			Source:     cfg.System,
			Schema:     cfg.System,
			Table:      cfg.Object,
			Key:        cdc.Row{{Name: "id", Value: cdc.AppendJSONString(nil, r.ID)}},
			After:      r.Fields,
			CommitTime: r.UpdatedAt,
			DeliveryID: did,
		}})
	}
	return out
}

// retry calls f until it succeeds, fails for good, or fails MaxAttempts
// times in a row.
func retry(ctx context.Context, cfg Config, log zerolog.Logger, op string, f func() error) error {
	backoff := cdc.Backoff{Min: cfg.BackoffMin, Max: cfg.BackoffMax}
	for attempt := 1; ; attempt++ {
		err := f()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case cdc.IsPermanent(err), attempt >= cfg.MaxAttempts:
			return err
		}
		d := backoff.Next()
		if ra, ok := cdc.RetryAfterOf(err); ok && ra > d {
			d = ra
		}
		log.Warn().Err(err).Str("op", op).Int("attempt", attempt).Float64("retry_in_seconds", d.Seconds()).Msg("import call failed; retrying")
		if !cdc.Sleep(ctx, d) {
			return errors.Join(err, ctx.Err())
		}
	}
}
