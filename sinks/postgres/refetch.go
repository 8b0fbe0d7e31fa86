package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// refetch reads back, before the transaction, the records whose change
// carried too little: marked Refetch, or partial, not linked, and missing
// a match column. A change the apply step will skip anyway is not read:
// one the own-write hint marks as an echo, and one read back as of a time
// its link already knows. It also reads the records whose change is older
// than cdcd's last write to them and differs from the link's base, which
// the comparison may need to tell whether that write overwrote it (held;
// when that read fails, the comparison reads the record itself if it
// does need it).
// All are read per object in the Fetcher's batches, each record once. It
// returns the records with the first kind replaced by the records read
// back and mapped, which records are done already (gone from the system,
// failing for good, or failing to be read: only those are retried), with
// their results filled in, and per record what the system held (nil when
// not read).
func (w *Writer) refetch(ctx context.Context, records []syncapi.Record, results []syncapi.Result, counts *[outcomes]int) ([]syncapi.Record, []bool, []cdc.Row, error) {
	b := &readBack{w: w, records: records, results: results, counts: counts,
		done: make([]bool, len(records)), held: make([]cdc.Row, len(records)), ids: map[string][]string{}}
	need, candidates := b.sort()
	switch {
	case len(need) == 0 && len(candidates) == 0:
		return records, b.done, b.held, nil
	case w.in.Fetcher == nil:
		b.refuse(need)
		return records, b.done, b.held, nil
	}
	keys := make([]linkKey, 0, len(need)+len(candidates))
	for _, i := range append(slices.Clone(need), candidates...) {
		keys = append(keys, linkKey{w.object(&records[i]), vendorID(records[i].Event)})
	}
	linked, err := w.links.states(ctx, keys)
	if err != nil {
		return nil, nil, nil, err
	}
	b.plan(need, candidates, linked)
	b.fetch(ctx)
	b.keepHeld()
	return b.replace(ctx), b.done, b.held, nil
}

// readBack is the reading back of one batch's records.
type readBack struct {
	w       *Writer
	records []syncapi.Record
	results []syncapi.Result
	counts  *[outcomes]int
	done    []bool    // per record: its result is final
	held    []cdc.Row // per record: the system's record, when read for the comparison

	ids        map[string][]string // object → ids to read
	read, late []int               // records to replace by what is read; records read for the comparison
	rows       map[linkKey]cdc.Row // what was read
	errs       map[string]error    // per object, the read's error
}

// sort returns the records that need reading back and those the
// comparison may need the system's record for.
func (b *readBack) sort() (need, candidates []int) {
	w := b.w
	for i := range b.records {
		switch {
		case w.hintOnly(b.records[i].Event):
		case w.needsFetch(&b.records[i]):
			need = append(need, i)
		case w.mayBeOverwritten(&b.records[i]):
			candidates = append(candidates, i) // linked, or not read back
		}
	}
	return need, candidates
}

func (b *readBack) fail(i int, err error) {
	b.results[i].Err = err
	b.done[i], b.counts[failed] = true, b.counts[failed]+1
}

// refuse fails the records that name their record only, when the system
// cannot be read.
func (b *readBack) refuse(need []int) {
	for _, i := range need {
		if b.records[i].Event.Refetch {
			b.fail(i, cdc.Permanent(fmt.Errorf("the change names the record only and %s cannot read records back; configure the system's API so cdcd can fetch it", b.w.origin)))
		}
	}
}

// add asks for the record of rec to be read, once.
func (b *readBack) add(rec *syncapi.Record) {
	object, id := b.w.object(rec), vendorID(rec.Event)
	if !slices.Contains(b.ids[object], id) {
		b.ids[object] = append(b.ids[object], id)
	}
}

// plan decides which records to read: a partial change of a linked
// record applies as it is (the link finds the row), and is read only for
// the comparison; a change older than what its link knows is skipped by
// applyIn unread.
func (b *readBack) plan(need, candidates []int, states map[linkKey]linkState) {
	w := b.w
	for _, i := range need {
		rec := &b.records[i]
		id := vendorID(rec.Event)
		l, linked := states[linkKey{w.object(rec), id}]
		switch {
		case !rec.Event.Refetch && linked:
			if w.mayBeOverwritten(rec) && w.overwritten(rec.Event, l) {
				b.add(rec)
				b.late = append(b.late, i)
			}
		case linked && !l.version.IsZero() && !rec.Event.CommitTime.After(l.version):
		case id == "":
			b.fail(i, cdc.Permanent(fmt.Errorf("the change names no record id to read back")))
		default:
			b.add(rec)
			b.read = append(b.read, i)
		}
	}
	for _, i := range candidates {
		if l, ok := states[linkKey{w.object(&b.records[i]), vendorID(b.records[i].Event)}]; ok && w.overwritten(b.records[i].Event, l) {
			b.add(&b.records[i])
			b.late = append(b.late, i)
		}
	}
}

// fetch reads the planned records, per object in the Fetcher's batches.
func (b *readBack) fetch(ctx context.Context) {
	b.rows, b.errs = map[linkKey]cdc.Row{}, map[string]error{}
	for _, object := range slices.Sorted(maps.Keys(b.ids)) {
		got, err := b.w.in.Fetcher.Fetch(ctx, object, b.ids[object], b.w.in.Fields)
		for id, row := range got {
			b.rows[linkKey{object, id}] = row
		}
		if err != nil {
			b.errs[object] = err
		}
	}
}

// keepHeld keeps what the system held of the records read for the
// comparison. One left unread is read again by the comparison only if
// the local value shows it needs it; one gone kept nothing.
func (b *readBack) keepHeld() {
	for _, i := range b.late {
		object, id := b.w.object(&b.records[i]), vendorID(b.records[i].Event)
		row, ok := b.rows[linkKey{object, id}]
		switch {
		case !ok && b.errs[object] != nil:
		case !ok:
			b.held[i] = cdc.Row{}
		default:
			b.held[i] = row
		}
	}
}

// replace returns the records with those read back replaced by what was
// read, mapped; a record gone from the system is skipped, one that failed
// to be read or mapped fails.
func (b *readBack) replace(ctx context.Context) []syncapi.Record {
	w := b.w
	out := slices.Clone(b.records)
	for _, i := range b.read {
		rec := &out[i]
		object, id := w.object(rec), vendorID(rec.Event)
		row, ok := b.rows[linkKey{object, id}]
		switch {
		case !ok && b.errs[object] != nil:
			b.fail(i, fmt.Errorf("read %s %s back from %s: %w", object, id, w.origin, b.errs[object]))
			continue
		case !ok:
			w.log.Debug().Str("event_id", rec.Event.ID()).Msg("record gone from the system; change skipped")
			b.done[i], b.counts[skippedGone] = true, b.counts[skippedGone]+1
			continue
		}
		e := *rec.Event
		e.After, e.Partial = row, false // Refetch stays: the values are as of the fetch, not of the change
		if e.Op == cdc.OpDelete {
			e.Op = cdc.OpUpdate
		}
		mapped, ok, err := w.in.Mapper.Map(ctx, &e)
		switch {
		case err != nil:
			b.fail(i, cdc.Permanent(fmt.Errorf("map the record read back: %w", err)))
		case !ok:
			b.done[i] = true // filtered out
		default:
			rec.Event, rec.Fields = &e, mapped.Fields
		}
	}
	return out
}

// mayBeOverwritten reports whether the change is one the comparison may
// need the system's record for: a change with values, to compare, of a
// system whose updates are patches.
func (w *Writer) mayBeOverwritten(rec *syncapi.Record) bool {
	e := rec.Event
	return e != nil && rec.Op != cdc.OpDelete && !e.Refetch && !e.CommitTime.IsZero() &&
		w.in.Conflicts != nil && w.in.Conflicts.Patched && len(w.relevant(e)) > 0
}

// overwritten reports whether the change is older than cdcd's last write
// to its record and sets a compared field to other than the link's base:
// that write may have overwritten it (see compare).
func (w *Writer) overwritten(e *cdc.Event, l linkState) bool {
	if l.version.IsZero() || !e.CommitTime.Before(l.version) {
		return false
	}
	for f, v := range w.relevant(e) {
		if _, compared := w.in.Conflicts.Columns[f]; !compared {
			continue
		}
		b, ok := l.base[f]
		if !ok {
			continue
		}
		if bj, err := json.Marshal(b); err != nil || !bytes.Equal(bj, v) {
			return true
		}
	}
	return false
}

func (w *Writer) needsFetch(rec *syncapi.Record) bool {
	e := rec.Event
	if e == nil || rec.Op == cdc.OpDelete {
		return false
	}
	if e.Refetch {
		return true
	}
	if !e.Partial {
		return false
	}
	for _, c := range w.cfg.Match {
		if v, ok := rec.Fields[c]; !ok || v == nil {
			return true
		}
	}
	return false
}
