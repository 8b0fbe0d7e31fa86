package pgwal

import (
	"fmt"

	"github.com/cdcd-dev/cdcd/cdc"
)

// span locates one encoded value in an event's buffer; end < 0 means the
// column is not part of the row.
type span struct{ start, end int }

// change decodes an Insert, Update or Delete into one event.
func (d *Decoder) change(data []byte, out []cdc.Event) ([]cdc.Event, error) {
	var (
		op       cdc.Op
		relOID   uint32
		oldKind  byte
		old, new []tupleValue
		err      error
	)
	switch data[0] {
	case msgInsert:
		var m insertMsg
		m, err = parseInsert(data, d.newTuple)
		op, relOID, new = cdc.OpCreate, m.rel, m.new
	case msgUpdate:
		var m updateMsg
		m, err = parseUpdate(data, d.oldTuple, d.newTuple)
		op, relOID, oldKind, old, new = cdc.OpUpdate, m.rel, m.oldKind, m.old, m.new
	default:
		var m deleteMsg
		m, err = parseDelete(data, d.oldTuple)
		op, relOID, oldKind, old = cdc.OpDelete, m.rel, m.oldKind, m.old
	}
	// Keep the grown scratch tuples, but no reference into data.
	defer func() {
		if old != nil {
			clear(old)
			d.oldTuple = old[:0]
		}
		if new != nil {
			clear(new)
			d.newTuple = new[:0]
		}
	}()
	if err != nil {
		return out, err
	}
	if !d.inTxn {
		return out, fmt.Errorf("decode pgoutput change for relation oid %d: no transaction is open", relOID)
	}
	rel := d.relations[relOID]
	if rel == nil {
		return out, fmt.Errorf("decode pgoutput change: unknown relation oid %d (no Relation message received for it)", relOID)
	}
	if err := rel.check(old, new); err != nil {
		return out, err
	}
	e := d.event(op, rel)
	d.fill(&e, rel, oldKind, old, new)
	return append(out, e), nil
}

// check verifies that the tuples match the relation.
func (rel *relation) check(old, new []tupleValue) error {
	for _, t := range [2][]tupleValue{old, new} {
		if t == nil {
			continue
		}
		if len(t) != len(rel.cols) {
			return fmt.Errorf("decode pgoutput change for %s.%s: tuple has %d columns, relation has %d", rel.schema, rel.table, len(t), len(rel.cols))
		}
		for i := range t {
			if t[i].kind == tupleBinary {
				return fmt.Errorf("decode pgoutput change for %s.%s: column %q is in binary format; start replication with binary 'false'", rel.schema, rel.table, rel.cols[i].name)
			}
		}
	}
	return nil
}

// fill sets Key, Before, After and Unchanged. All values share one buffer
// and the three rows one Field slice, so an event costs two allocations
// (three with unchanged TOAST columns).
func (d *Decoder) fill(e *cdc.Event, rel *relation, oldKind byte, old, new []tupleValue) {
	size := 16
	for _, t := range [2][]tupleValue{old, new} {
		for i := range t {
			n := len(t[i].data)
			size += n + n>>3 + 8
		}
	}
	buf := make([]byte, 0, size)
	buf, d.oldSpans = d.encodeTuple(buf, rel.cols, old, oldKind == 'K', d.oldSpans)
	buf, d.newSpans = d.encodeTuple(buf, rel.cols, new, false, d.newSpans)

	nBefore, nAfter, nUnchanged := present(d.oldSpans), present(d.newSpans), len(d.newSpans)-present(d.newSpans)
	fields := make([]cdc.Field, 0, nBefore+nAfter+len(rel.key))
	if old != nil {
		fields, e.Before = appendRow(fields, buf, rel.cols, d.oldSpans)
	}
	if new != nil {
		fields, e.After = appendRow(fields, buf, rel.cols, d.newSpans)
	}
	if nUnchanged > 0 {
		e.Unchanged = make([]string, 0, nUnchanged)
		for i, s := range d.newSpans {
			if s.end < 0 {
				e.Unchanged = append(e.Unchanged, rel.cols[i].name)
			}
		}
	}
	if len(rel.key) == 0 {
		return
	}
	start := len(fields)
	for _, i := range rel.key {
		// The key comes from the new row, or from the old one for a delete
		// or when the new row left the column out (unchanged TOAST).
		s := span{end: -1}
		if new != nil {
			s = d.newSpans[i]
		}
		if s.end < 0 && old != nil {
			s = d.oldSpans[i]
		}
		if s.end >= 0 {
			fields = append(fields, cdc.Field{Name: rel.cols[i].name, Value: buf[s.start:s.end:s.end]})
		}
	}
	e.Key = cdc.Row(fields[start:len(fields):len(fields)])
}

// encodeTuple appends t's values to buf and records where each one is.
// Unchanged TOAST values are left out, and so are the NULL placeholders of
// non-identity columns in a 'K' (keyOnly) tuple.
func (d *Decoder) encodeTuple(buf []byte, cols []column, t []tupleValue, keyOnly bool, spans []span) ([]byte, []span) {
	spans = spans[:0]
	for i := range t {
		s := span{start: len(buf), end: -1}
		switch v := &t[i]; {
		case v.kind == tupleUnchanged:
		case v.kind == tupleNull && keyOnly && !cols[i].identity:
		case v.kind == tupleNull:
			buf = append(buf, "null"...)
			s.end = len(buf)
		default:
			buf = d.enc.Append(buf, cols[i].rule, v.data)
			s.end = len(buf)
		}
		spans = append(spans, s)
	}
	return buf, spans
}

func present(spans []span) int {
	n := 0
	for _, s := range spans {
		if s.end >= 0 {
			n++
		}
	}
	return n
}

// appendRow appends the present columns to fields and returns them as a
// Row that cannot grow into the fields after it.
func appendRow(fields []cdc.Field, buf []byte, cols []column, spans []span) ([]cdc.Field, cdc.Row) {
	start := len(fields)
	for i, s := range spans {
		if s.end >= 0 {
			fields = append(fields, cdc.Field{Name: cols[i].name, Value: buf[s.start:s.end:s.end]})
		}
	}
	return fields, cdc.Row(fields[start:len(fields):len(fields)])
}
