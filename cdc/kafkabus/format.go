package kafkabus

import (
	"bytes"
	"sync"

	"github.com/cdcd-dev/cdcd/cdc"
)

// Formats of the messages on the topics (Config.Format).
const (
	// FormatDebezium writes what Debezium's PostgreSQL connector writes: a
	// delete is followed by a tombstone (a null value under the same key)
	// unless Config.NoTombstones, and an update that changes the primary
	// key is a delete and a tombstone under the old key, then a create
	// under the new one, carrying the other key in the headers
	// HeaderNewKey and HeaderOldKey.
	FormatDebezium = "debezium"
	// FormatCDCD writes one message per event: no tombstones, and a key
	// change is one update under the new key with the old key in before.
	FormatCDCD = "cdcd"
)

// Headers of a primary-key change in the debezium format, as Debezium
// names them: the delete under the old key names the new key, the create
// under the new key names the old one.
const (
	HeaderNewKey = "__debezium.newkey"
	HeaderOldKey = "__debezium.oldkey"
)

// part is one message of an event.
type part struct {
	ev        *cdc.Event // the envelope's event; its Key is the message key
	tombstone bool       // a null value
	header    string     // HeaderNewKey, HeaderOldKey or ""
	headerKey cdc.Row    // the key that header names
	ack       cdc.Acker
}

// split appends the messages of e to parts.
func (p *Producer) split(parts []part, e *cdc.Event) []part {
	if p.cfg.Format == FormatCDCD {
		return append(parts, part{ev: e})
	}
	tombstones := !p.cfg.NoTombstones
	switch e.Op {
	case cdc.OpDelete:
		parts = append(parts, part{ev: e})
		if tombstones && e.Key != nil {
			parts = append(parts, part{ev: &cdc.Event{Key: e.Key, Relation: e.Relation}, tombstone: true})
		}
		return parts
	case cdc.OpUpdate:
		old, changed := oldKey(e)
		if !changed {
			return append(parts, part{ev: e})
		}
		del := *e
		del.Op, del.Key, del.After, del.Unchanged = cdc.OpDelete, old, nil, nil
		parts = append(parts, part{ev: &del, header: HeaderNewKey, headerKey: e.Key})
		if tombstones {
			parts = append(parts, part{ev: &cdc.Event{Key: old, Relation: e.Relation}, tombstone: true})
		}
		create := *e
		create.Op, create.Before = cdc.OpCreate, nil
		return append(parts, part{ev: &create, header: HeaderOldKey, headerKey: old})
	}
	return append(parts, part{ev: e})
}

// oldKey returns the key columns of e.Before and whether they differ from
// e.Key. Before holds them when the key changed (any replica identity) or
// the identity is FULL.
func oldKey(e *cdc.Event) (cdc.Row, bool) {
	if e.Before == nil || len(e.Key) == 0 {
		return nil, false
	}
	old := make(cdc.Row, 0, len(e.Key))
	changed := false
	for _, k := range e.Key {
		v, ok := e.Before.Get(k.Name)
		if !ok {
			return nil, false
		}
		if !bytes.Equal(v, k.Value) {
			changed = true
		}
		old = append(old, cdc.Field{Name: k.Name, Value: v})
	}
	return old, changed
}

// fanAck settles an event once all n of its messages are settled, with the
// first error any of them had.
type fanAck struct {
	mu   sync.Mutex
	left int
	err  error
	a    cdc.Acker
}

func newFanAck(a cdc.Acker, n int) *fanAck { return &fanAck{left: n, a: a} }

func (f *fanAck) Ack(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.left--
	done, first := f.left == 0, f.err
	f.mu.Unlock()
	if done {
		f.a.Ack(first)
	}
}
