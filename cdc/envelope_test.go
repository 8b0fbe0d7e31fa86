package cdc

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func sampleEvent() Event {
	return Event{
		Op: OpUpdate, Source: SourcePostgres, Origin: "hubspot",
		Schema: "public", Table: "contacts",
		Key:        Row{{"id", json.RawMessage(`7`)}},
		Before:     Row{{"id", json.RawMessage(`7`)}},
		After:      Row{{"id", json.RawMessage(`7`)}, {"email", json.RawMessage(`"a\"b@x"`)}, {"n", json.RawMessage(`"1.50"`)}, {"tags", json.RawMessage(`["x",null]`)}},
		Unchanged:  []string{"bio"},
		CommitTime: time.UnixMilli(1700000000123).UTC(),
		Pos:        Position{CommitLSN: 0x19F4CD8, Index: 3},
		TxID:       42,
	}
}

func TestEnvelopeGolden(t *testing.T) {
	e := sampleEvent()
	got := AppendEnvelope(nil, &e, &SourceInfo{Name: "cdcd", DB: "app", Version: "1.0.0"}, time.UnixMilli(1700000000999))
	want := `{"before":{"id":7},"after":{"id":7,"email":"a\"b@x","n":"1.50","tags":["x",null],"bio":"__debezium_unavailable_value"},` +
		`"source":{"version":"1.0.0","connector":"postgresql","name":"cdcd","ts_ms":1700000000123,"snapshot":"false","db":"app",` +
		`"schema":"public","table":"contacts","txId":42,"lsn":27217112,"index":3,"origin":"hubspot"},"op":"u","ts_ms":1700000000999,"unchanged":["bio"]}`
	if string(got) != want {
		t.Fatalf("envelope\n got %s\nwant %s", got, want)
	}
	if !json.Valid(got) {
		t.Fatal("envelope is not valid JSON")
	}
	if key := AppendKey(nil, &e); string(key) != `{"id":7}` {
		t.Fatalf("key %s", key)
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	e := sampleEvent()
	value := AppendEnvelope(nil, &e, &SourceInfo{Name: "cdcd"}, time.Now())
	got, err := ParseEnvelope(AppendKey(nil, &e), value)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != e.ID() || got.Op != e.Op || got.Origin != e.Origin || got.Table != e.Table || got.TxID != e.TxID ||
		!got.CommitTime.Equal(e.CommitTime) || len(got.Unchanged) != 1 {
		t.Fatalf("round trip: %+v", got)
	}
	for _, pair := range [][2]Row{{got.After, e.After}, {got.Before, e.Before}, {got.Key, e.Key}} {
		if string(appendRow(nil, pair[0])) != string(appendRow(nil, pair[1])) {
			t.Fatalf("row %s, want %s", appendRow(nil, pair[0]), appendRow(nil, pair[1]))
		}
	}
}

// An unchanged TOASTed column is Debezium's placeholder in after, not
// absent (which a Debezium consumer reads as NULL), and parses back as
// absent and unchanged; a column that holds the placeholder's text and is
// not listed as unchanged keeps it.
func TestEnvelopeUnavailable(t *testing.T) {
	e := Event{
		Op: OpUpdate, Schema: "public", Table: "docs", Key: Row{{"id", json.RawMessage(`1`)}},
		After:     Row{{"note", json.RawMessage(`"` + Unavailable + `"`)}},
		Unchanged: []string{"body", "blob"},
	}
	value := AppendEnvelope(nil, &e, &SourceInfo{}, time.UnixMilli(0))
	if !strings.Contains(string(value), `"after":{"note":"__debezium_unavailable_value","body":"__debezium_unavailable_value","blob":"__debezium_unavailable_value"}`) {
		t.Fatalf("after: %s", value)
	}
	got, err := ParseEnvelope(AppendKey(nil, &e), value)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.After) != 1 || got.After[0].Name != "note" || len(got.Unchanged) != 2 {
		t.Fatalf("parsed after %s, unchanged %q", appendRow(nil, got.After), got.Unchanged)
	}
	e.After = Row{}
	value = AppendEnvelope(nil, &e, &SourceInfo{}, time.UnixMilli(0))
	if !strings.Contains(string(value), `"after":{"body":"__debezium_unavailable_value","blob":"__debezium_unavailable_value"}`) || !json.Valid(value) {
		t.Fatalf("after of unchanged columns only: %s", value)
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "quote\" back\\ slash", "ctl\x00\x1f\n\t\r", "ünïcödé ✓", "bad\xffutf8", "\u2028\u2029", "<&>"} {
		got := AppendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q encoded as invalid JSON %s: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("%q round-trips to %q, want %q", s, back, wantBack)
		}
	}
}

func FuzzParseEnvelope(f *testing.F) {
	e := sampleEvent()
	f.Add(AppendKey(nil, &e), AppendEnvelope(nil, &e, &SourceInfo{}, time.Now()))
	f.Add([]byte(`null`), []byte(`{"op":"t","before":null,"after":null,"source":{}}`))
	f.Add([]byte(`{`), []byte(`{"op":"c","after":{"a":}}`))
	// Whatever parses is one codec's: what it writes back is valid JSON
	// and parses to an event it writes back byte for byte (nothing the
	// codec writes is lost or changed on the way back: inbound block,
	// unchanged columns, position).
	src, now := &SourceInfo{Name: "cdcd", DB: "app", Version: "1"}, time.UnixMilli(1700000000999)
	f.Fuzz(func(t *testing.T, key, value []byte) {
		ev, err := ParseEnvelope(key, value)
		if err != nil {
			return
		}
		k1, v1 := AppendKey(nil, &ev), AppendEnvelope(nil, &ev, src, now)
		if !json.Valid(v1) || !json.Valid(k1) {
			t.Fatalf("re-encoded envelope or key is invalid JSON: %s %s", k1, v1)
		}
		back, err := ParseEnvelope(k1, v1)
		if err != nil {
			t.Fatalf("the codec's own envelope does not parse: %v\n%s", err, v1)
		}
		if k2, v2 := AppendKey(nil, &back), AppendEnvelope(nil, &back, src, now); string(k2) != string(k1) || string(v2) != string(v1) {
			t.Fatalf("round trip changed the envelope:\n got %s %s\nwant %s %s", k2, v2, k1, v1)
		}
	})
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("x\"\\\x00\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		if out := AppendJSONString(nil, s); !json.Valid(out) {
			t.Fatalf("invalid JSON for %q: %s", s, out)
		}
	})
}

func TestEnvelopeRoundTripInbound(t *testing.T) {
	e := Event{
		Op: OpUpdate, Source: "hubspot", Origin: "hubspot", Schema: "hubspot", Table: "contacts",
		Key: Row{{"id", json.RawMessage(`"512"`)}}, After: Row{{"firstname", json.RawMessage(`"Ada"`)}},
		CommitTime: time.UnixMilli(1763819940123).UTC(), DeliveryID: "hs-1#0",
		Partial: true, Refetch: true, OriginHint: "INTEGRATION/77",
	}
	value := AppendEnvelope(nil, &e, &SourceInfo{Name: "cdcd"}, time.Now())
	if !json.Valid(value) {
		t.Fatalf("invalid JSON: %s", value)
	}
	got, err := ParseEnvelope(AppendKey(nil, &e), value)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != "hs-1#0" || !got.Partial || !got.Refetch || got.OriginHint != "INTEGRATION/77" ||
		got.Source != "hubspot" || got.Origin != "hubspot" || !got.CommitTime.Equal(e.CommitTime) {
		t.Fatalf("round trip: %+v", got)
	}
	local := sampleEvent()
	if v := AppendEnvelope(nil, &local, &SourceInfo{}, time.Now()); json.Valid(v) && bytesContains(v, `"inbound"`) {
		t.Fatalf("a local event carries an inbound block: %s", v)
	}
}

func bytesContains(b []byte, s string) bool { return strings.Contains(string(b), s) }

// splitRow reads every valid JSON value as parseRow does: the same
// members, names and values, or an error from both.
func FuzzSplitRowMatchesParseRow(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":"x\"}","c":{"d":[1,{"e":"]"}]},"d":null}`, ` { "a" : true , "\u00e9\n" : -1.5e3 } `,
		`{}`, `null`, `[1]`, `"s"`, `{"a":"\\","b\\":"\ud800"}`, "{\"\xff\":1}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		want, wantErr := parseRow(b)
		got, err := splitRow(b)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%q: error %v, want %v", b, err, wantErr)
		}
		if (got == nil) != (want == nil) || len(got) != len(want) {
			t.Fatalf("%q: %q, want %q", b, got, want)
		}
		for i := range want {
			if got[i].Name != want[i].Name || string(got[i].Value) != string(want[i].Value) {
				t.Fatalf("%q: member %d is %q, want %q", b, i, got[i], want[i])
			}
		}
	})
}

func BenchmarkParseEnvelope(b *testing.B) {
	e := sampleEvent()
	key, value := AppendKey(nil, &e), AppendEnvelope(nil, &e, &SourceInfo{}, time.Now())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseEnvelope(key, value); err != nil {
			b.Fatal(err)
		}
	}
}
