package echo

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/cdcd-dev/cdcd/syncstate"
)

func TestEqual(t *testing.T) {
	for _, tt := range []struct {
		raw  string
		v    any
		want bool
	}{
		{`"Ada"`, "Ada", true},
		{`"Ada"`, "ada", false},
		{`42`, json.Number("42"), true},
		{`"42"`, 42.0, true}, // HubSpot sends every property as a string
		{`42.0`, 42, true},
		{`"true"`, true, true},
		{`false`, "false", true},
		{`null`, nil, true},
		{`null`, "", false},
		{`{"a":1,"b":[1,"x"]}`, map[string]any{"b": []any{1, "x"}, "a": 1}, true},
		{`{"a":1}`, map[string]any{"a": 1, "b": 2}, false},
		{`[1,2]`, []any{2, 1}, false},
		{`not json`, "not json", false},
		// One instant in the text forms vendors and Postgres print.
		{`"2026-03-01T07:34:41.123Z"`, "2026-03-01T07:34:41.123000Z", true},
		{`"2026-03-01T07:34:41.123Z"`, "2026-03-01 07:34:41.123+00", true},
		{`"2026-03-01T10:00:00.000+0000"`, "2026-03-01T10:00:00Z", true},
		{`"2026-03-01T11:00:00+01:00"`, "2026-03-01T10:00:00Z", true},
		{`"2026-03-01T07:34:41.123Z"`, "2026-03-01T07:34:41.124Z", false},
		{`"2026-03-01"`, "2026-03-01T00:00:00Z", false},
		{`"2026-03-01T07:34:41Z"`, "2026-03-01T07:34:41", false}, // no zone: not an instant
		// One interval in ISO 8601 and in Postgres's output.
		{`"1 day"`, "P1D", true},
		{`"P1Y2M3DT4H5M6.5S"`, "1 year 2 mons 3 days 04:05:06.5", true},
		{`"@ 1 day 2 hours ago"`, "P-1DT-2H", true},
		{`"24:00:00"`, "P1D", false}, // a day is not 24 hours
		{`"1 day"`, "P2D", false},
		{`"1 day"`, "1 days", false}, // neither is ISO 8601: text only
	} {
		if got := Equal(json.RawMessage(tt.raw), tt.v); got != tt.want {
			t.Errorf("Equal(%s, %#v) = %v, want %v", tt.raw, tt.v, got, tt.want)
		}
	}
}

func TestKnown(t *testing.T) {
	base := map[string]any{"firstname": "Ann", "email": "a@x"}
	writes := []map[string]any{{"firstname": "Anne"}, {"firstname": "Annie", "phone": "1"}}
	raw := func(kv ...string) map[string]json.RawMessage {
		m := map[string]json.RawMessage{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = json.RawMessage(kv[i+1])
		}
		return m
	}
	for _, tt := range []struct {
		name   string
		fields map[string]json.RawMessage
		echo   bool
		layer  string
	}{
		{"equal to the base", raw("firstname", `"Ann"`, "email", `"a@x"`), true, LayerBase},
		{"an older write", raw("firstname", `"Annie"`), true, LayerRecent},
		{"fields from the base and a write", raw("firstname", `"Anne"`, "email", `"a@x"`), true, LayerRecent},
		{"a new value", raw("firstname", `"Bea"`), false, ""},
		{"one new field among known ones", raw("firstname", `"Ann"`, "company", `"Acme"`), false, ""},
		{"nothing to compare", raw(), false, ""},
	} {
		echo, layer := Known(tt.fields, base, writes)
		if echo != tt.echo || layer != tt.layer {
			t.Errorf("%s: Known = %v %q, want %v %q", tt.name, echo, layer, tt.echo, tt.layer)
		}
	}
}

type memLinks struct {
	syncstate.Links
	put []syncstate.Link
}

func (m *memLinks) Put(_ context.Context, links []syncstate.Link) error {
	m.put = append(m.put, links...)
	return nil
}

type memWrites struct{ got []syncstate.Link }

func (m *memWrites) Remember(_ context.Context, links []syncstate.Link) error {
	m.got = append(m.got, links...)
	return nil
}

func TestRememberKeepsEveryLinkPut(t *testing.T) {
	links, writes := &memLinks{}, &memWrites{}
	l := syncstate.Link{System: "hubspot", Object: "contacts", ExternalID: "1", Base: map[string]any{"n": 1}}
	if err := Remember(links, writes).Put(context.Background(), []syncstate.Link{l}); err != nil {
		t.Fatal(err)
	}
	if len(links.put) != 1 || len(writes.got) != 1 || writes.got[0].ExternalID != "1" {
		t.Fatalf("links put %v, writes remembered %v", links.put, writes.got)
	}
}
