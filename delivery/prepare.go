package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/internal/jsonvalue"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// item is one record on its way to the system, with its retry state.
type item struct {
	rec     Record
	table   string    // the event's schema.table
	attempt int       // attempts made so far
	waits   int       // of them, failed for the system's sake (cdc.Transient): not counted toward MaxAttempts
	first   time.Time // start of the first attempt
	letter  *syncstate.DeadLetter
	// born: a delete whose record's create was folded into it (coalesce),
	// so the record may never have reached the system.
	born bool
	// alone: the last call the record was in failed as a whole for the
	// system's sake, which names no record; its next call is its own
	// (take).
	alone bool
}

// identity names a local record: records of one identity are written in
// order, one at a time.
type identity struct{ table, object, key string }

func (it *item) identity() identity { return identity{it.table, it.rec.Object, it.rec.Key} }

// newItemOf is the item of rec, a change to a record of table.
func newItemOf(rec Record, table string) *item {
	return &item{rec: rec, table: table}
}

func (it *item) ref(system string) (syncstate.LinkRef, bool) {
	if it.rec.Key == "" {
		return syncstate.LinkRef{}, false
	}
	return syncstate.LinkRef{System: system, Object: it.rec.Object, Table: it.table, Key: it.rec.Key}, true
}

func tableOf(e *cdc.Event) string {
	if e.Schema == "" {
		return e.Table
	}
	return e.Schema + "." + e.Table
}

// tables names the tables of a Write's events, once per table rather
// than once per event.
type tables struct {
	schema, table, name string
}

func (t *tables) of(e *cdc.Event) string {
	if t.name == "" || e.Schema != t.schema || e.Table != t.table {
		t.schema, t.table, t.name = e.Schema, e.Table, tableOf(e)
	}
	return t.name
}

// newItem fills what the Mapper left empty: the event, its op, the
// pipeline's object and the event's key.
func (p *Pipeline) newItem(e *cdc.Event, rec Record, names *tables) *item {
	if rec.Event == nil {
		rec.Event = e
	}
	if rec.Op == 0 {
		rec.Op = e.Op
	}
	if rec.Object == "" {
		rec.Object = p.cfg.Object
	}
	if rec.Key == "" && len(e.Key) > 0 {
		rec.Key = string(cdc.AppendKey(nil, e))
	}
	return newItemOf(rec, names.of(e))
}

// prepare maps the events into items, coalesces them, dead-letters the
// events that cannot be mapped and audits the skipped ones.
func (p *Pipeline) prepare(ctx context.Context, events []cdc.Event) ([]*item, error) {
	items := make([]*item, 0, len(events))
	var letters []syncstate.DeadLetter
	var outcomes []syncstate.Outcome
	now := time.Now()
	var names tables
	for i := range events {
		e := &events[i]
		rec, ok, err := p.m.Map(ctx, e)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		switch {
		case err != nil:
			it := p.newItem(e, Record{}, &names)
			letters = append(letters, p.deadLetter(it, fmt.Errorf("map: %w", err), now))
			outcomes = append(outcomes, p.outcome(it, syncstate.StatusDeadLettered, now, 0, letters[len(letters)-1].Error))
			p.logDead(it, "mapping")
		case !ok:
			outcomes = append(outcomes, p.outcome(p.newItem(e, Record{}, &names), syncstate.StatusSkipped, now, 0, "filtered"))
		default:
			items = append(items, p.newItem(e, rec, &names))
		}
	}
	if p.cfg.Coalesce {
		var gone []syncstate.Outcome
		items, gone = p.coalesce(items, now)
		outcomes = append(outcomes, gone...)
	}
	if err := p.putDeadLetters(ctx, letters); err != nil {
		return nil, err
	}
	if err := p.audit(ctx, outcomes); err != nil {
		return nil, err
	}
	p.met.dead.Add(float64(len(letters)))
	p.met.skipped.Add(float64(len(outcomes) - len(letters)))
	return items, nil
}

// deadLetter describes it for the dead-letter store. Attempts is 0 for an
// event that could not be mapped: a replay maps it again.
func (p *Pipeline) deadLetter(it *item, err error, now time.Time) syncstate.DeadLetter {
	e := it.rec.Event
	dl := syncstate.DeadLetter{
		Pipeline: p.cfg.Name, System: p.cfg.System, Object: it.rec.Object,
		Table: it.table, Key: it.rec.Key, EventID: e.ID(), Op: it.rec.Op,
		Event:    cdc.AppendEnvelope(nil, e, &cdc.SourceInfo{}, now),
		Error:    errorText(err),
		Attempts: it.attempt,
		FailedAt: now,
	}
	if c := (*syncstate.LinkConflictError)(nil); errors.As(err, &c) {
		dl.ClaimedID = c.ExternalID
	}
	if it.attempt > 0 {
		b, jerr := jsonvalue.Marshal(it.rec.Fields)
		if jerr != nil {
			b = []byte("null")
		}
		dl.Record = b
	}
	return dl
}

func (p *Pipeline) outcome(it *item, s syncstate.Status, now time.Time, latency time.Duration, msg string) syncstate.Outcome {
	return syncstate.Outcome{
		At: now, Pipeline: p.cfg.Name, System: p.cfg.System, Object: it.rec.Object,
		Key: it.rec.Key, EventID: it.rec.Event.ID(), Op: it.rec.Op,
		Status: s, Attempt: it.attempt, Latency: latency, Error: msg,
	}
}

// putDeadLetters stores letters. A failing store does not fail the Write,
// which would bring the batch back with its attempts counted from zero to
// fail the same way: the failure is logged as an error and counted, Ready
// reports it, and the letters are stored again with backoff until the
// store takes them or ctx ends.
func (p *Pipeline) putDeadLetters(ctx context.Context, letters []syncstate.DeadLetter) error {
	if len(letters) == 0 {
		return nil
	}
	if p.st.DeadLetters == nil {
		p.log.Warn().Int("records", len(letters)).Msg("no dead-letter store; undeliverable records dropped")
		return nil
	}
	for try := 1; ; try++ {
		err := p.st.DeadLetters.Put(ctx, letters)
		if err == nil {
			p.deadStoreUp()
			return nil
		}
		err = fmt.Errorf("store %d dead letters: %w", len(letters), err)
		if !p.deadStoreDown(ctx, err, try, len(letters)) {
			return err
		}
	}
}

// deadStoreUp notes that the dead-letter store took letters.
func (p *Pipeline) deadStoreUp() {
	if p.deadStoreErr.Swap(nil) != nil {
		p.met.deadStoreDown.Set(0)
		p.log.Info().Msg("dead letters stored again")
	}
}

// deadStoreDown notes that the dead-letter store failed to take n letters
// at the try-th try and waits before the next one. It returns false once
// ctx ended.
func (p *Pipeline) deadStoreDown(ctx context.Context, err error, try, n int) bool {
	if ctx.Err() != nil {
		return false
	}
	p.deadStoreErr.Store(&err)
	p.met.deadStoreFailures.Inc()
	p.met.deadStoreDown.Set(1)
	p.log.Error().Err(err).Int("records", n).Int("try", try).
		Msg("dead-letter store failing; the batch waits until its dead letters are stored")
	return cdc.Sleep(ctx, p.backoff(try, nil))
}

// Ready reports whether the pipeline can settle what it cannot deliver:
// an error while its dead letters cannot be stored.
func (p *Pipeline) Ready() error {
	if err := p.deadStoreErr.Load(); err != nil {
		return fmt.Errorf("dead letters cannot be stored (%w); the pipeline waits", *err)
	}
	return nil
}

func (p *Pipeline) audit(ctx context.Context, outcomes []syncstate.Outcome) error {
	if len(outcomes) == 0 || p.st.Audit == nil {
		return nil
	}
	if err := p.st.Audit.Record(ctx, outcomes); err != nil {
		return fmt.Errorf("record %d audit outcomes: %w", len(outcomes), err)
	}
	return nil
}

// logDead reports a dead letter without its values or error text.
func (p *Pipeline) logDead(it *item, class string) {
	p.log.Warn().Str("event_id", it.rec.Event.ID()).Str("object", it.rec.Object).
		Str("table", it.table).Str("op", it.rec.Op.String()).Str("class", class).
		Int("attempts", it.attempt).Msg("record dead-lettered")
}
