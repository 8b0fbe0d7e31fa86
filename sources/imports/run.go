package imports

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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
	// Reject is told of each record of a page that cannot be handed over
	// (no id, or one the intake cannot store), record naming it
	// printably, once the rest of its page is durable and before the
	// page is saved; nil drops them. Its errors are retried as save's.
	Reject func(ctx context.Context, record string, err error) error
}

// maxID bounds a record's id, which goes into the intake's delivery ids
// (a btree key, at most 2704 bytes).
const maxID = 1024

// Progress is told, once a page is durable in the intake, the cursor of
// the next page ("" after the last) and how many records the page handed
// over. Storing next resumes the import there. An error is retried as a
// page is (a moment without the database does not stop the import); a
// permanent one (cdc.Permanent) stops Run.
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
			changes, rejects := cfg.changes(p.Records)
			err := retry(gctx, cfg, log, "hand over", func() error { return in.Accept(gctx, cfg.System, changes) })
			if err != nil {
				return fmt.Errorf("hand %d %s of %s to the intake: %w", len(changes), cfg.Object, cfg.System, err)
			}
			for _, r := range rejects {
				if cfg.Reject == nil {
					log.Warn().Err(r.err).Msg("record not imported")
					continue
				}
				if err := retry(gctx, cfg, log, "record a rejected record", func() error { return cfg.Reject(gctx, r.record, r.err) }); err != nil {
					return fmt.Errorf("record a %s not imported: %w", cfg.Object, err)
				}
			}
			if err := retry(gctx, cfg, log, "save", func() error { return save(gctx, p.Next, len(changes)) }); err != nil {
				return fmt.Errorf("save the import's cursor: %w", err)
			}
			log.Debug().Int("records", len(changes)).Int("rejected", len(rejects)).Bool("last", p.Next == "").Msg("page imported")
		}
		return nil
	})
	return g.Wait()
}

// reject is a record that cannot be handed over.
type reject struct {
	record string
	err    error
}

// changes turns a page's records into changes, and those it cannot into
// rejects.
func (cfg *Config) changes(recs []Record) ([]webhook.Change, []reject) {
	out := make([]webhook.Change, 0, len(recs))
	var rejects []reject
	for _, r := range recs {
		if err := checkID(r.ID); err != nil {
			rejects = append(rejects, reject{printable(r.ID), err})
			continue
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
	return out, rejects
}

// checkID reports why id cannot name a change: nothing to link or match
// it by, or what the intake cannot store.
func checkID(id string) error {
	switch {
	case id == "":
		return cdc.Permanent(errors.New("the record has no id"))
	case strings.ContainsRune(id, 0) || !utf8.ValidString(id):
		return cdc.Permanent(errors.New("the record's id holds NUL or is not UTF-8"))
	case len(id) > maxID:
		return cdc.Permanent(fmt.Errorf("the record's id is %d bytes, more than %d", len(id), maxID))
	}
	return nil
}

// printable is id as text can hold it: NUL and invalid UTF-8 escaped,
// cut after 200 bytes.
func printable(id string) string {
	if len(id) > 200 {
		n := 200
		for n > 0 && !utf8.RuneStart(id[n]) {
			n-- // not within a character
		}
		id = id[:n] + "..."
	}
	if strings.ContainsRune(id, 0) || !utf8.ValidString(id) {
		q := strconv.Quote(id)
		return q[1 : len(q)-1]
	}
	return id
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
