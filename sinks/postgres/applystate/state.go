// Package applystate keeps, per system, local table and record, what the
// Postgres writer last applied (cdcd.apply_state, made by store's
// migrations): the version of the newest change, per column the version
// of the change that last set it, and after a delete its tombstone, which
// stops a late update from resurrecting the record. The writer reads and
// writes it in the transaction that applies the change.
package applystate

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

// State is what was last applied to one record.
type State struct {
	Exists     bool
	Version    time.Time // of the newest change applied; zero when unknown
	EventID    string
	Tombstoned bool // deleted within the tombstone TTL
	// fields holds, per local column, the stamp of the change that last
	// set it. A state kept before there were per-column stamps has its
	// record's stamp under anyColumn.
	Fields map[string]Stamp
}

// OlderThan reports whether s is newer than every change applied.
func (st State) OlderThan(s Stamp) bool {
	return !st.Exists || s.Version.IsZero() || st.Version.IsZero() || s.After(Stamp{st.Version, st.EventID})
}

// anyColumn stands for every column without a stamp of its own.
const anyColumn = "*"

// Fresh returns the columns of fields that s is newer for than the change
// that last set them: a system reporting each changed field on its own,
// in no order, makes a change late for one field and not for another.
func (st State) Fresh(fields map[string]any, s Stamp) map[string]any {
	out := make(map[string]any, len(fields))
	for c, v := range fields {
		last, ok := st.Fields[c]
		if !ok {
			last, ok = st.Fields[anyColumn]
		}
		if !ok || s.Version.IsZero() || last.Version.IsZero() || s.After(last) {
			out[c] = v
		}
	}
	return out
}

// With returns the state after a change stamped s set the columns cols:
// the record's stamp is the newest applied, each column's the one that
// set it last. A delete forgets the columns.
func (st State) With(s Stamp, newer bool, cols map[string]any, deleted bool) State {
	next := st
	next.Exists = true
	if newer {
		if !s.Version.IsZero() {
			next.Version = s.Version
		}
		next.EventID = s.EventID
	}
	next.Fields = map[string]Stamp{}
	if !deleted {
		for c, x := range st.Fields {
			next.Fields[c] = x
		}
		for c := range cols {
			next.Fields[c] = s
		}
	}
	return next
}

// stampJSON is how a column's stamp is kept: [version, event id].
type stampJSON [2]string

// rowStamped is the key under which the stamps list the columns whose
// stamp is the record's own (the state's version and event id): a column
// name is never empty. Most changes set every column they carry with the
// record's new stamp, so a state keeps a list of names instead of a
// stamp per column. A state written before (every column with its own
// stamp) reads the same.
const rowStamped = ""

// encodeFields writes the stamps as {"": [column, …], "column": [version,
// event id], …}: the columns stamped with row, the record's stamp, by
// name, the others with their stamp, columns in order, without
// reflection: every applied change writes one. Only a row stamp that the
// state's timestamptz holds exactly (a version, in microseconds) is
// folded, so that a column's stamp reads back as it was.
func encodeFields(fields map[string]Stamp, row Stamp) []byte {
	fold := !row.Version.IsZero() && row.Version.Equal(row.Version.Truncate(time.Microsecond))
	b := make([]byte, 0, 2+len(fields)*16)
	b = append(b, '{')
	var own []string
	if fold {
		n := 0
		for _, c := range slices.Sorted(maps.Keys(fields)) {
			if s := fields[c]; s.EventID != row.EventID || !s.Version.Equal(row.Version) {
				own = append(own, c)
				continue
			}
			if n == 0 {
				b = append(b, `"":[`...)
			} else {
				b = append(b, ',')
			}
			b = cdc.AppendJSONString(b, c)
			n++
		}
		if n > 0 {
			b = append(b, ']')
		}
	} else {
		own = slices.Sorted(maps.Keys(fields))
	}
	for _, c := range own {
		if len(b) > 1 {
			b = append(b, ',')
		}
		s := fields[c]
		b = cdc.AppendJSONString(b, c)
		b = append(b, ':', '[', '"')
		if !s.Version.IsZero() {
			b = s.Version.UTC().AppendFormat(b, time.RFC3339Nano)
		}
		b = append(b, '"', ',')
		b = cdc.AppendJSONString(b, s.EventID)
		b = append(b, ']')
	}
	return append(b, '}')
}

// decodeFields reads what encodeFields wrote, with row the record's
// stamp, and the stamps of a state written before there was a list of
// columns stamped with the record's own.
func decodeFields(b []byte, row Stamp) (map[string]Stamp, error) {
	var in map[string][]string
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, err
	}
	out := make(map[string]Stamp, len(in)+len(in[rowStamped]))
	if !row.Version.IsZero() {
		row.Version = row.Version.UTC() // as a stamp of its own reads back
	}
	for _, c := range in[rowStamped] {
		out[c] = row
	}
	var text string // the columns of a change share its version: parsed once
	var parsed time.Time
	for c, x := range in {
		if c == rowStamped {
			continue
		}
		if len(x) != 2 {
			return nil, fmt.Errorf("the stamp of column %q has %d parts, want 2", c, len(x))
		}
		var s Stamp
		if x[0] != "" {
			if x[0] != text {
				t, err := time.Parse(time.RFC3339Nano, x[0])
				if err != nil {
					return nil, err
				}
				text, parsed = x[0], t
			}
			s.Version = parsed
		}
		s.EventID = x[1]
		out[c] = s
	}
	return out, nil
}

// Stamp orders changes: by version, then by event id.
type Stamp struct {
	Version time.Time
	EventID string
}

// After reports whether a orders after b.
func (a Stamp) After(b Stamp) bool {
	if !a.Version.Equal(b.Version) {
		return a.Version.After(b.Version)
	}
	return a.EventID > b.EventID
}

// StampOf returns the stamp of a change: its time and id.
func StampOf(e *cdc.Event) Stamp {
	if e == nil {
		return Stamp{}
	}
	return Stamp{Version: e.CommitTime, EventID: e.ID()}
}
