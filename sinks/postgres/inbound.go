package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/echo"
	"github.com/cdcd-dev/cdcd/store"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// Inbound is what the writer needs beyond its Config to apply a system's
// changes: how to recognise echoes of cdcd's own writes, and how to read a
// record back when a webhook carried too little. Every field may be zero.
type Inbound struct {
	// Object is the system's entity (contacts); links are kept under the
	// origin system and Object. Default: the record's Object.
	Object string
	// Fields are the vendor fields the pipeline maps; only those take part
	// in echo checks and the link's base, and a record read back is asked
	// for them. Nil means every field.
	Fields []string
	// Fetcher reads a record back from the system, for changes marked
	// Refetch and for partial changes of records that are not linked yet
	// and lack the match columns. Mapper maps the record read back.
	Fetcher delivery.Fetcher
	Mapper  delivery.Mapper
	// OwnWrite reports whether a vendor's origin hint names cdcd's own
	// client.
	OwnWrite func(hint string) bool
	// Echoes counts suppressed echoes.
	Echoes *echo.Counter
	// Conflicts, when set, decides changes to fields that also changed
	// locally since the last sync.
	Conflicts *Conflicts
}

// link is a record's row in cdcd.links, seen from the inbound side.
type link struct {
	localKey string         // JSON of the local primary key
	base     map[string]any // the agreed field values (vendor names)
	// version is the system's time of the record when it was last synced:
	// its updated-at after cdcd's write, or the occurred-at of the change
	// applied. Zero when unknown.
	version time.Time
}

// vendorID is the record's id in the system: the "id" of the event's key.
func vendorID(e *cdc.Event) string {
	if e == nil {
		return ""
	}
	raw, ok := e.Key.Get("id")
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw) // a number, as its text
}

// relevant returns the fields of the change the pipeline maps.
func (w *Writer) relevant(e *cdc.Event) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(e.After))
	for _, f := range e.After {
		if w.in.Fields == nil || slices.Contains(w.in.Fields, f.Name) {
			out[f.Name] = f.Value
		}
	}
	return out
}

func (w *Writer) object(rec *delivery.Record) string {
	if w.in.Object != "" {
		return w.in.Object
	}
	return rec.Object
}

// loadLink locks and returns the link of the system's record id to this
// writer's table; nil when there is none.
func (w *Writer) loadLink(ctx context.Context, tx pgx.Tx, object, id string) (*link, error) {
	var (
		table, key, version string
		base                []byte
	)
	err := tx.QueryRow(ctx, `SELECT local_table, local_key, base, coalesce(version, '') FROM cdcd.links
		WHERE system = $1 AND object = $2 AND external_id = $3 FOR UPDATE`, w.origin, object, id).Scan(&table, &key, &base, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the link: %w", err)
	}
	if table != w.cfg.Table {
		return nil, nil // linked to a record of another table
	}
	l := &link{localKey: key}
	l.version, _ = time.Parse(time.RFC3339Nano, version) // a version that is no time compares as unknown
	d := json.NewDecoder(bytes.NewReader(base))
	d.UseNumber()
	if err := d.Decode(&l.base); err != nil {
		return nil, fmt.Errorf("decode the link's base: %w", err)
	}
	return l, nil
}

// saveLink records that the system's record id is the local record
// localKey, with the change's fields merged into the base.
func (w *Writer) saveLink(ctx context.Context, tx pgx.Tx, object, id, localKey string, old *link, e *cdc.Event) error {
	base := map[string]any{}
	if old != nil && old.localKey == localKey {
		maps.Copy(base, old.base)
	}
	for name, v := range w.relevant(e) {
		base[name] = v // json.RawMessage encodes as itself
	}
	b, err := json.Marshal(base)
	if err != nil {
		return fmt.Errorf("encode the link's base: %w", err)
	}
	var version *string
	// A late change keeps the version of a later one already applied.
	if !e.CommitTime.IsZero() && (old == nil || !old.version.After(e.CommitTime)) {
		s := e.CommitTime.UTC().Format("2006-01-02T15:04:05.999999999Z07:00")
		version = &s
	}
	ref := syncstate.LinkRef{System: w.origin, Object: object, Table: w.cfg.Table, Key: localKey}
	return store.LinkRecord(ctx, tx, ref, id, b, version)
}

// touchVersion moves the link's version to at when that is later: the
// system's record as of at is known (an echo, a compared change).
func (w *Writer) touchVersion(ctx context.Context, tx pgx.Tx, object, id string, lk *link, at time.Time) error {
	if lk == nil || at.IsZero() || !at.After(lk.version) {
		return nil
	}
	if err := store.SetLinkVersion(ctx, tx, w.origin, object, id, at); err != nil {
		return err
	}
	lk.version = at
	return nil
}

// dropLink removes the link of a record the system deleted.
func (w *Writer) dropLink(ctx context.Context, tx pgx.Tx, object, id string) error {
	return store.UnlinkRecord(ctx, tx, w.origin, object, id)
}

// echoLayer returns the layer that recognises the change as an echo of
// cdcd's own write, or "". cdcd's recent writes to the record, which any
// process of the deployment may have made, are read in tx only when the
// link's base does not already know the change.
func (w *Writer) echoLayer(ctx context.Context, tx pgx.Tx, rec *delivery.Record, l *link) (string, error) {
	e := rec.Event
	if e == nil || rec.Op == cdc.OpDelete {
		return "", nil
	}
	if w.hintOnly(e) {
		return echo.LayerHint, nil
	}
	var base map[string]any
	if l != nil {
		base = l.base
	}
	fields := w.relevant(e)
	if ok, layer := echo.Known(fields, base, nil); ok {
		return layer, nil
	}
	id := vendorID(e)
	if id == "" || len(fields) == 0 {
		return "", nil
	}
	writes, err := store.ReadRecentWrites(ctx, tx, w.origin, w.object(rec), id)
	if err != nil {
		return "", err
	}
	if ok, layer := echo.Known(fields, base, writes); ok {
		return layer, nil
	}
	return "", nil
}

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
func (w *Writer) refetch(ctx context.Context, records []delivery.Record, results []delivery.Result, counts *[outcomes]int) ([]delivery.Record, []bool, []cdc.Row, error) {
	done, held := make([]bool, len(records)), make([]cdc.Row, len(records))
	var need, candidates []int
	for i := range records {
		switch {
		case w.hintOnly(records[i].Event):
		case w.needsFetch(&records[i]):
			need = append(need, i)
		case w.mayBeOverwritten(&records[i]):
			candidates = append(candidates, i) // linked, or not read back
		}
	}
	if len(need) == 0 && len(candidates) == 0 {
		return records, done, held, nil
	}
	fail := func(i int, err error) {
		results[i].Err = err
		done[i], counts[failed] = true, counts[failed]+1
	}
	if w.in.Fetcher == nil {
		for _, i := range need {
			if records[i].Event.Refetch {
				fail(i, cdc.Permanent(fmt.Errorf("the change names the record only and %s cannot read records back; configure the system's API so cdcd can fetch it", w.origin)))
			}
		}
		return records, done, held, nil
	}
	links, err := w.linkStates(ctx, records, append(slices.Clone(need), candidates...))
	if err != nil {
		return nil, nil, nil, err
	}
	ids := map[string][]string{} // object → ids to read
	add := func(rec *delivery.Record) {
		object, id := w.object(rec), vendorID(rec.Event)
		if !slices.Contains(ids[object], id) {
			ids[object] = append(ids[object], id)
		}
	}
	var read, late []int
	for _, i := range need {
		e := records[i].Event
		id := vendorID(e)
		l, linked := links[linkKey{w.object(&records[i]), id}]
		switch {
		case !e.Refetch && linked:
			if w.mayBeOverwritten(&records[i]) && w.overwritten(e, l) {
				add(&records[i])
				late = append(late, i)
			}
			continue // the link finds the row; the partial change applies as is
		case linked && !l.version.IsZero() && !e.CommitTime.After(l.version):
			continue // stale: applyIn skips it
		case id == "":
			fail(i, cdc.Permanent(fmt.Errorf("the change names no record id to read back")))
			continue
		}
		add(&records[i])
		read = append(read, i)
	}
	for _, i := range candidates {
		if l, ok := links[linkKey{w.object(&records[i]), vendorID(records[i].Event)}]; ok && w.overwritten(records[i].Event, l) {
			add(&records[i])
			late = append(late, i)
		}
	}
	rows := map[linkKey]cdc.Row{}
	errs := map[string]error{}
	for _, object := range slices.Sorted(maps.Keys(ids)) {
		got, err := w.in.Fetcher.Fetch(ctx, object, ids[object], w.in.Fields)
		for id, row := range got {
			rows[linkKey{object, id}] = row
		}
		if err != nil {
			errs[object] = err
		}
	}
	for _, i := range late {
		object, id := w.object(&records[i]), vendorID(records[i].Event)
		row, ok := rows[linkKey{object, id}]
		switch {
		case !ok && errs[object] != nil:
			// Left unread: the comparison reads it again only if the local
			// value shows it needs it.
		case !ok:
			held[i] = cdc.Row{} // gone: nothing survived
		default:
			held[i] = row
		}
	}
	out := slices.Clone(records)
	for _, i := range read {
		rec := &out[i]
		object, id := w.object(rec), vendorID(rec.Event)
		row, ok := rows[linkKey{object, id}]
		switch {
		case !ok && errs[object] != nil:
			fail(i, fmt.Errorf("read %s %s back from %s: %w", object, id, w.origin, errs[object]))
			continue
		case !ok:
			w.log.Debug().Str("event_id", rec.Event.ID()).Msg("record gone from the system; change skipped")
			done[i], counts[skippedGone] = true, counts[skippedGone]+1
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
			fail(i, cdc.Permanent(fmt.Errorf("map the record read back: %w", err)))
			continue
		case !ok:
			done[i] = true // filtered out
			continue
		}
		rec.Event, rec.Fields = &e, mapped.Fields
	}
	return out, done, held, nil
}

// mayBeOverwritten reports whether the change is one the comparison may
// need the system's record for: a change with values, to compare, of a
// system whose updates are patches.
func (w *Writer) mayBeOverwritten(rec *delivery.Record) bool {
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

// hintOnly reports whether the change is cdcd's own write by its origin
// hint and holds no value of the mapped fields to compare: the apply step
// skips it as an echo, so it is never read back. A change that holds
// values is compared instead, hint or not: values that triggers or flows
// set in the transaction of cdcd's write carry cdcd's hint too (Salesforce
// changeOrigin), and must not be lost with the echo.
func (w *Writer) hintOnly(e *cdc.Event) bool {
	return e != nil && e.OriginHint != "" && w.in.OwnWrite != nil && w.in.OwnWrite(e.OriginHint) && len(w.relevant(e)) == 0
}

func (w *Writer) needsFetch(rec *delivery.Record) bool {
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

// linkKey is a system's record: its object and id.
type linkKey struct{ object, id string }

// linkState is what refetch needs of a record's link.
type linkState struct {
	version time.Time      // zero when unknown
	base    map[string]any // the agreed field values (vendor names)
}

// linkStates returns the link of each of the records' system ids that is
// linked to a row of this writer's table.
func (w *Writer) linkStates(ctx context.Context, records []delivery.Record, idx []int) (map[linkKey]linkState, error) {
	objects, ids := make([]string, 0, len(idx)), make([]string, 0, len(idx))
	for _, i := range idx {
		objects = append(objects, w.object(&records[i]))
		ids = append(ids, vendorID(records[i].Event))
	}
	rows, _ := w.pool.Query(ctx, `SELECT l.object, l.external_id, coalesce(l.version, ''), l.base FROM unnest($2::text[], $3::text[]) AS r(object, external_id)
		JOIN cdcd.links l ON l.system = $1 AND l.object = r.object AND l.external_id = r.external_id AND l.local_table = $4`,
		w.origin, objects, ids, w.cfg.Table)
	linked := map[linkKey]linkState{}
	var (
		object, id, version string
		base                []byte
	)
	if _, err := pgx.ForEachRow(rows, []any{&object, &id, &version, &base}, func() error {
		var l linkState
		l.version, _ = time.Parse(time.RFC3339Nano, version) // a version that is no time compares as unknown
		d := json.NewDecoder(bytes.NewReader(base))
		d.UseNumber()
		_ = d.Decode(&l.base) // an unreadable base compares as empty; applyIn reports it
		linked[linkKey{object, id}] = l
		return nil
	}); err != nil {
		return nil, classify("look up links", err)
	}
	return linked, nil
}
