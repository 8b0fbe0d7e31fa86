package delivery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// PipelineConfig configures the delivery of one pipeline to one system.
type PipelineConfig struct {
	// Name identifies the pipeline in stores, logs and metrics; System is
	// the target system; Object is the default Record.Object.
	Name, System, Object string
	// Coalesce collapses the pending changes to one record within a Write
	// into its latest state. The pipeline file defaults it to true; the
	// zero value writes every change.
	Coalesce bool
	// Concurrency is how many Writer calls, each for records of distinct
	// keys, run at once (default 4).
	Concurrency int
	// MaxAttempts bounds the attempts for one record before it is
	// dead-lettered (default 8). Attempts that failed cdc.Transient do not
	// count.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the delay before a retry (defaults
	// 200ms and 1m). The delay grows exponentially with full jitter above
	// MinBackoff; a cdc.RetryAfter delay is honoured even beyond MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// MaxAge dead-letters a record still failing this long after its first
	// attempt (default 24h).
	MaxAge time.Duration
	// RemoteMoved, when set and the Writer is a Versioner, is called for
	// each record about to be updated that the system changed since cdcd
	// last synced it (with the system's version), so that the change is
	// brought in and compared; the update is retried meanwhile.
	RemoteMoved func(ctx context.Context, object, externalID string, version time.Time) error
}

func (c *PipelineConfig) validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name: required"))
	}
	if c.System == "" {
		errs = append(errs, errors.New("system: required"))
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"concurrency", int64(c.Concurrency)},
		{"max_attempts", int64(c.MaxAttempts)},
		{"min_backoff", int64(c.MinBackoff)},
		{"max_backoff", int64(c.MaxBackoff)},
		{"max_age", int64(c.MaxAge)},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", f.name))
		}
	}
	c.Concurrency = orDefault(c.Concurrency, 4)
	c.MaxAttempts = orDefault(c.MaxAttempts, 8)
	c.MinBackoff = orDefault(c.MinBackoff, 200*time.Millisecond)
	c.MaxBackoff = orDefault(c.MaxBackoff, time.Minute)
	c.MaxAge = orDefault(c.MaxAge, 24*time.Hour)
	if c.MinBackoff > c.MaxBackoff {
		errs = append(errs, fmt.Errorf("min_backoff %v exceeds max_backoff %v", c.MinBackoff, c.MaxBackoff))
	}
	return errors.Join(errs...)
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Stores are the pipeline's durable state. A nil store is not used: no
// links are looked up or kept, dead letters are dropped (after a warning),
// no audit trail is written. Only tests leave them nil.
type Stores struct {
	Links       syncstate.Links
	DeadLetters syncstate.DeadLetters
	Audit       syncstate.Audit
	// Pending is used when the Writer is a Settler; nil keeps pending
	// creates in memory for the length of one Write.
	Pending syncstate.PendingCreates
	// Tx, when set, runs fn in one transaction of the stores above: what
	// fn stores through them with the ctx it is given is committed once fn
	// returns nil, or not at all. The bookkeeping of a group of Writer
	// calls (links, dead letters, audit, settled pending creates) is
	// stored in one; without Tx, one statement (and commit) after the
	// other.
	Tx func(ctx context.Context, fn func(ctx context.Context) error) error
}

// Pipeline delivers a pipeline's events to one system through its Writer.
// It is a cdc.Sink.
//
// Write returns nil only once every event is delivered (the Writer reported
// success), skipped (the Mapper skipped it, or a later change to the same
// record in the batch superseded it), or durably dead-lettered, so the
// caller may acknowledge them all. It returns an error only when ctx ends
// or a store fails; then none of the events may be acknowledged and the
// caller writes the whole batch again (writes are idempotent). A failing
// dead-letter store is the exception: Write stores the letters again
// until it takes them (Ready reports an error meanwhile), so their
// attempts are not counted again from zero.
//
// Write may be called again before earlier calls returned (it is
// cdc.Overlapping): a later Write reads its records' links while an
// earlier one makes its Writer calls, and makes its own once the earlier
// ones' are over, while their last bookkeeping is stored; if it shares a
// record with one of them, it reads that record's link once that one's
// bookkeeping is stored, so that the record is read with its new link.
// Any may return first; a caller that retries the earlier batch after the
// later one wrote finds their shared records' links newer than its
// changes, and skips them (see skipOlder).
//
// Within a Write, the records of one key (one local record: table, object
// and key) are written strictly in order and never concurrently; records of
// different keys are written concurrently, in batches of distinct keys. A
// record that fails transiently is retried with backoff and holds back the
// later records of its key, not those of other keys; Write waits for it
// until it is delivered or dead-lettered (after MaxAttempts, or MaxAge).
// Dead letters: a Permanent error at once, exhausted retries, and events
// the Mapper fails on (Attempts 0).
//
// Links: after a successful write the record's link holds the system's id,
// the fields written (Base), the system's version and the event's commit
// LSN. A successful delete keeps the link, with its ExternalID, as a
// tombstone with a nil Base; a later change to that record is written
// without an ExternalID (created anew), while a repeated delete still
// carries it. Records without a key and results without an external id
// make no link. A record whose result names an external id that another
// local record's link holds (Links.Put refuses it) is not linked: it is
// dead-lettered, alone, and the others are linked (see LinkConflictError).
//
// Pending creates: for a Writer that is a Settler, a create is recorded in
// Stores.Pending before it is sent and cleared once its record is linked
// or its error shows nothing was applied; while it is pending (after a
// restart too) the record's writes carry Record.Unsettled.
//
// Audit: every attempt is recorded (delivered with its attempt number and
// the Writer call's latency, retried, dead_lettered); skipped events are
// recorded with the reason in Outcome.Error.
type Pipeline struct {
	cfg   PipelineConfig
	m     Mapper
	w     Writer
	st    Stores
	log   zerolog.Logger
	met   *metrics
	batch int
	// settler is the Writer when it is a Settler.
	settler Settler

	// A Write takes two turns, one after the other. prep is held by the
	// one Write or replay preparing: mapping its events, waiting for the
	// earlier Writes that share its records and reading their links. turn
	// is held by the one Write or replay making Writer calls; a Write
	// gives it up once its calls are over, while its last bookkeeping is
	// stored. So the next Write reads its links while the one before makes
	// its calls, and makes its own while that one's bookkeeping is stored.
	prep, turn chan struct{}
	// tails are the Writes that held prep, whose bookkeeping may not be
	// stored yet; only prep's holder reads or changes them.
	tails  tails
	closed atomic.Bool
	// callers make the Writer calls.
	callers *callers
	// deadStoreErr is the dead-letter store's last error while it fails.
	deadStoreErr atomic.Pointer[error]
}

var errClosed = errors.New("delivery pipeline is closed")

var _ cdc.Overlapping = (*Pipeline)(nil)

// NewPipeline validates cfg and returns the pipeline. It does not contact
// the system or the stores.
func NewPipeline(cfg PipelineConfig, m Mapper, w Writer, st Stores, log zerolog.Logger, reg prometheus.Registerer) (*Pipeline, error) {
	err := cfg.validate()
	if m == nil {
		err = errors.Join(err, errors.New("mapper: required"))
	}
	if w == nil {
		err = errors.Join(err, errors.New("writer: required"))
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline %q: %w", cfg.Name, err)
	}
	met, err := newMetrics(reg, cfg.Name, cfg.System)
	if err != nil {
		return nil, fmt.Errorf("pipeline %q: %w", cfg.Name, err)
	}
	if ec, ok := w.(EveryChange); ok && ec.EveryChange() {
		cfg.Coalesce = false
	}
	batch := 1
	if b, ok := w.(Batcher); ok && b.MaxBatch() > 1 {
		batch = b.MaxBatch()
	}
	settler, _ := w.(Settler)
	return &Pipeline{
		cfg: cfg, m: m, w: w, st: st, met: met, batch: batch, settler: settler,
		prep: make(chan struct{}, 1), turn: make(chan struct{}, 1),
		callers: newCallers(cfg.Concurrency),
		log:     log.With().Str("component", "delivery").Str("pipeline", cfg.Name).Logger(),
	}, nil
}

// Write delivers events as the Pipeline documentation says.
func (p *Pipeline) Write(ctx context.Context, events []cdc.Event) error {
	if p.closed.Load() {
		return errClosed
	}
	if len(events) == 0 {
		return nil
	}
	if err := take(ctx, p.prep); err != nil {
		return err
	}
	var prepOnce sync.Once
	prepared := func() { prepOnce.Do(func() { <-p.prep }) }
	defer prepared()
	start := time.Now()
	items, err := p.prepare(ctx, events)
	if err != nil {
		return err
	}
	if err := p.tails.waitFor(ctx, items); err != nil {
		return err
	}
	links, err := p.lookup(ctx, items)
	if err != nil {
		return err
	}
	if items, err = p.hold(ctx, items, links); err != nil {
		return err
	}
	if items, err = p.skipOlder(ctx, items, links); err != nil {
		return err
	}
	t := newTail(items)
	p.tails = append(p.tails, t)
	defer close(t.done)
	prepared()
	if err := take(ctx, p.turn); err != nil {
		return err
	}
	var once sync.Once
	unlock := func() { once.Do(func() { <-p.turn }) }
	defer unlock()
	st, err := p.deliver(ctx, items, links, false, unlock)
	if err != nil {
		return fmt.Errorf("deliver %d events to %s: %w", len(events), p.cfg.System, err)
	}
	p.log.Debug().Int("events", len(events)).Int("records", len(items)).
		Int("delivered", st.delivered).Int("retried", st.retried).Int("dead_lettered", st.dead).
		Float64("took_seconds", time.Since(start).Seconds()).Msg("batch delivered")
	return nil
}

// tail is a Write whose Writer calls are over and whose last bookkeeping
// may still be being stored.
type tail struct {
	records map[identity]bool // the identities of its records
	done    chan struct{}     // closed once its bookkeeping is stored, or failed
}

func newTail(items []*item) *tail {
	t := &tail{records: make(map[identity]bool, len(items)), done: make(chan struct{})}
	for _, it := range items {
		t.records[it.identity()] = true
	}
	return t
}

// tails are Writes whose bookkeeping may not be stored yet, oldest first.
type tails []*tail

// waitFor returns at once unless one of items is a record of one of ts,
// whose link, pending create and held state are read from the stores
// next: then once that Write's bookkeeping is stored or failed, or ctx
// ended. It forgets the Writes that are over.
func (ts *tails) waitFor(ctx context.Context, items []*item) error {
	ts.prune()
	for _, t := range *ts {
		for _, it := range items {
			if t.records[it.identity()] {
				if err := t.wait(ctx); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}

// wait returns once every Write's bookkeeping is stored or failed, or
// ctx ended.
func (ts *tails) wait(ctx context.Context) error {
	for _, t := range *ts {
		if err := t.wait(ctx); err != nil {
			return err
		}
	}
	*ts = (*ts)[:0]
	return nil
}

func (ts *tails) prune() {
	*ts = slices.DeleteFunc(*ts, func(t *tail) bool {
		select {
		case <-t.done:
			return true
		default:
			return false
		}
	})
}

func (t *tail) wait(ctx context.Context) error {
	select {
	case <-t.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// overlap is how many Writes may run at once: one reading its links, one
// making its calls, the others storing their last bookkeeping (a group of
// links, recent writes and audit events takes about as long as a Write's
// calls).
const overlap = 4

// MaxBatch is the Writer's batch when it takes more in one call than the
// in-process bus gives a Write by default (cdc.Batcher): such a Writer's
// call is one transaction, so a bus batch of that size is one commit
// instead of two. Otherwise it is 0, the bus's batch.
func (p *Pipeline) MaxBatch() int {
	if p.batch > cdc.DefaultBatchSize {
		return p.batch
	}
	return 0
}

var _ cdc.Batcher = (*Pipeline)(nil)

// Overlap is how many Writes may run at once: see Write.
func (p *Pipeline) Overlap() int { return overlap }

// take waits for turn (prep or turn), held by one Write or replay at a
// time, until ctx ends. Receiving from turn gives it up.
func take(ctx context.Context, turn chan struct{}) error {
	select {
	case turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the pipeline: later Writes fail. It closes the Writer if it
// has a Close(context.Context) error method.
func (p *Pipeline) Close(ctx context.Context) error {
	p.closed.Store(true)
	p.callers.stop()
	if c, ok := p.w.(interface{ Close(context.Context) error }); ok {
		return c.Close(ctx)
	}
	return nil
}

// hold skips, and audits, the items of records held by an open conflict.
func (p *Pipeline) hold(ctx context.Context, items []*item, links map[syncstate.LinkRef]*syncstate.Link) ([]*item, error) {
	kept := items[:0:0]
	var held []*item
	var outcomes []syncstate.Outcome
	now := time.Now()
	for _, it := range items {
		if ref, ok := it.ref(p.cfg.System); ok && links[ref] != nil && links[ref].Held {
			held = append(held, it)
			outcomes = append(outcomes, p.outcome(it, syncstate.StatusSkipped, now, 0, heldReason))
			continue
		}
		kept = append(kept, it)
	}
	if len(outcomes) == 0 {
		return items, nil
	}
	if err := p.releaseHeld(ctx, held, links); err != nil {
		return nil, err
	}
	if err := p.audit(ctx, outcomes); err != nil {
		return nil, err
	}
	p.met.skipped.Add(float64(len(outcomes)))
	return kept, nil
}

// olderReason is why a re-sent change is not written.
const olderReason = "older than the change the system holds"

// skipOlder skips, and audits, the items whose change is older than the
// one their record's link says the system holds: changes re-sent from the
// last confirmed position after a crash or a rebalance, which would move
// the system back until the newer change came again. A change of the
// transaction the link names is written again (the link does not say
// which of its changes it holds).
func (p *Pipeline) skipOlder(ctx context.Context, items []*item, links map[syncstate.LinkRef]*syncstate.Link) ([]*item, error) {
	if len(links) == 0 {
		return items, nil
	}
	kept := items[:0:0]
	var outcomes []syncstate.Outcome
	now := time.Now()
	for _, it := range items {
		if ref, ok := it.ref(p.cfg.System); ok {
			if l, lsn := links[ref], it.rec.Event.Pos.CommitLSN; l != nil && lsn != 0 && l.LSN > lsn {
				outcomes = append(outcomes, p.outcome(it, syncstate.StatusSkipped, now, 0, olderReason))
				continue
			}
		}
		kept = append(kept, it)
	}
	if len(outcomes) == 0 {
		return items, nil
	}
	if err := p.audit(ctx, outcomes); err != nil {
		return nil, err
	}
	p.met.skipped.Add(float64(len(outcomes)))
	p.log.Debug().Int("records", len(outcomes)).Msg("re-sent changes older than the system holds skipped")
	return kept, nil
}

// lookup fetches, in one call, the links of the items' records.
func (p *Pipeline) lookup(ctx context.Context, items []*item) (map[syncstate.LinkRef]*syncstate.Link, error) {
	if p.st.Links == nil {
		return nil, nil
	}
	seen := make(map[syncstate.LinkRef]bool, len(items))
	refs := make([]syncstate.LinkRef, 0, len(items))
	for _, it := range items {
		if ref, ok := it.ref(p.cfg.System); ok && !seen[ref] {
			seen[ref] = true
			refs = append(refs, ref)
		}
	}
	if len(refs) == 0 {
		return nil, nil
	}
	links, err := p.st.Links.Get(ctx, refs)
	if err != nil {
		return nil, fmt.Errorf("look up %d links: %w", len(refs), err)
	}
	return links, nil
}
