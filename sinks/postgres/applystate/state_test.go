package applystate

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(sec int, id string) Stamp {
	return Stamp{Version: t0.Add(time.Duration(sec) * time.Second), EventID: id}
}

func TestStateOlderThan(t *testing.T) {
	t.Parallel()
	applied := State{Exists: true, Version: at(5, "e5").Version, EventID: "e5"}
	for _, tt := range []struct {
		name  string
		st    State
		s     Stamp
		newer bool
	}{
		{"no state", State{}, at(1, "e1"), true},
		{"later", applied, at(6, "e6"), true},
		{"earlier", applied, at(4, "e4"), false},
		{"same time, higher id", applied, at(5, "e6"), true},
		{"same time, lower id", applied, at(5, "e3"), false},
		{"the same change again", applied, at(5, "e5"), false},
		{"a change without a time", applied, Stamp{EventID: "x"}, true},
		{"a state without a time", State{Exists: true, EventID: "e9"}, at(1, "e1"), true},
	} {
		if got := tt.st.OlderThan(tt.s); got != tt.newer {
			t.Errorf("%s: OlderThan = %v, want %v", tt.name, got, tt.newer)
		}
	}
}

// A system reporting each changed field on its own, in no order: a change
// late for the record may still be the newest for a column.
func TestStateFreshColumns(t *testing.T) {
	t.Parallel()
	st := State{Exists: true, Fields: map[string]Stamp{"name": at(5, "e5"), "phone": at(2, "e2")}}
	got := st.Fresh(map[string]any{"name": "old", "phone": "new", "email": "new"}, at(3, "e3"))
	if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, []string{"email", "phone"}) {
		t.Fatalf("fresh columns %v, want email and phone", keys)
	}
	// A state kept before per-column stamps stamps every column alike.
	legacy := State{Exists: true, Fields: map[string]Stamp{anyColumn: at(5, "e5")}}
	if got := legacy.Fresh(map[string]any{"name": "x"}, at(3, "e3")); len(got) != 0 {
		t.Fatalf("legacy state: fresh %v, want none", got)
	}
	if got := legacy.Fresh(map[string]any{"name": "x"}, at(6, "e6")); len(got) != 1 {
		t.Fatalf("legacy state: fresh %v, want name", got)
	}
}

func TestStateWith(t *testing.T) {
	t.Parallel()
	st := State{Exists: true, Version: at(5, "e5").Version, EventID: "e5", Fields: map[string]Stamp{"name": at(5, "e5")}}
	// An older change of another column keeps the record's stamp.
	next := st.With(at(3, "e3"), false, map[string]any{"phone": "1"}, false)
	if next.Version != st.Version || next.EventID != "e5" || next.Fields["phone"] != at(3, "e3") || next.Fields["name"] != at(5, "e5") {
		t.Fatalf("after an older change: %+v", next)
	}
	if _, ok := st.Fields["phone"]; ok {
		t.Fatal("With changed the state it was called on")
	}
	// A delete forgets the columns and is the newest change.
	gone := next.With(at(7, "e7"), true, nil, true)
	if gone.Version != at(7, "").Version || gone.EventID != "e7" || len(gone.Fields) != 0 {
		t.Fatalf("after a delete: %+v", gone)
	}
}

// The stamps encode as encoding/json would write them, whatever the
// column names and event ids hold.
func TestFieldsEncodeAsJSON(t *testing.T) {
	t.Parallel()
	in := map[string]Stamp{"name": at(5, "e5"), "phone": {EventID: "no time"}, `q"uo\te`: at(6, "tab\tnew\nline"),
		"<html>&": at(7, "bad \xff utf8"), "é": {Version: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600)), EventID: "\x01"}}
	got := encodeFields(in, Stamp{})
	want := map[string]stampJSON{}
	for c, s := range in {
		var v string
		if !s.Version.IsZero() {
			v = s.Version.UTC().Format(time.RFC3339Nano)
		}
		want[c] = stampJSON{v, s.EventID}
	}
	wantJSON, _ := json.Marshal(want)
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	_ = json.Unmarshal(wantJSON, &b)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("encoded %s, encoding/json writes %s", got, wantJSON)
	}
}

func TestFieldsRoundTrip(t *testing.T) {
	t.Parallel()
	in := map[string]Stamp{"name": at(5, "e5"), "phone": {EventID: "no time"}}
	b := encodeFields(in, Stamp{})
	out, err := decodeFields(b, Stamp{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || !out["name"].Version.Equal(in["name"].Version) || out["name"].EventID != "e5" ||
		!out["phone"].Version.IsZero() || out["phone"].EventID != "no time" {
		t.Fatalf("round trip of %s: %+v", b, out)
	}
}

// The columns stamped with the record's stamp are kept by name, the
// others with their stamps, and read back the same; a record's stamp
// with nanoseconds (which the state's timestamptz cannot hold) or without
// a version is not folded.
func TestFieldsFoldTheRecordsStamp(t *testing.T) {
	t.Parallel()
	nanos := Stamp{Version: t0.Add(time.Nanosecond), EventID: "e9"}
	for _, tt := range []struct {
		name   string
		fields map[string]Stamp
		row    Stamp
		want   string
	}{
		{"every column the record's", map[string]Stamp{"name": at(5, "e5"), "city": at(5, "e5")}, at(5, "e5"),
			`{"":["city","name"]}`},
		{"some of another change", map[string]Stamp{"name": at(5, "e5"), "city": at(4, "e4"), "*": at(5, "e5")}, at(5, "e5"),
			`{"":["*","name"],"city":["2026-01-02T03:04:09Z","e4"]}`},
		{"none the record's", map[string]Stamp{"city": at(4, "e4")}, at(5, "e5"),
			`{"city":["2026-01-02T03:04:09Z","e4"]}`},
		{"nanoseconds", map[string]Stamp{"city": nanos}, nanos,
			`{"city":["2026-01-02T03:04:05.000000001Z","e9"]}`},
		{"no version", map[string]Stamp{"city": {EventID: "e9"}}, Stamp{EventID: "e9"},
			`{"city":["","e9"]}`},
		{"no columns", map[string]Stamp{}, at(5, "e5"), `{}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := encodeFields(tt.fields, tt.row)
			if string(b) != tt.want {
				t.Fatalf("encoded %s, want %s", b, tt.want)
			}
			if !json.Valid(b) {
				t.Fatalf("%s is not JSON", b)
			}
			out, err := decodeFields(b, tt.row)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != len(tt.fields) {
				t.Fatalf("read back %v, want %v", out, tt.fields)
			}
			for c, s := range tt.fields {
				if got := out[c]; !got.Version.Equal(s.Version) || got.EventID != s.EventID {
					t.Errorf("column %s read back %+v, want %+v", c, got, s)
				}
			}
		})
	}
}
