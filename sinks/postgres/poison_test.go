package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// hostileDB is a database with the contacts table and schema cdcd.
func hostileDB(t testing.TB, pg *cdctest.Postgres, name string) string {
	url := pg.CreateDB(t, name)
	pg.Exec(t, name, contactsDDL)
	migrate(t, url)
	return url
}

// withID gives r's event the system's record id, as a webhook's key holds
// it (raw JSON).
func withID(r syncapi.Record, rawID string) syncapi.Record {
	e := *r.Event
	e.Key = cdc.Row{{Name: "id", Value: json.RawMessage(rawID)}}
	r.Event = &e
	return r
}

// Regression: a NUL in a value was sent inside the statement's text,
// Postgres answered 08P01, which was taken as transient, and the batch it
// was in was retried for good. Every record of a batch either applies or
// fails on its own, permanently when the data is at fault; the others
// apply in the same call.
func TestHostileValuesApplyOrFailAlone(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := hostileDB(t, pg, "hostile")
	w := newWriter(t, "crm", testConfig(url))
	long := strings.Repeat("é", 5000) // 10 kB
	tests := []struct {
		name    string
		fields  map[string]any
		rawID   string
		applies bool
	}{
		{name: "nul in text", fields: map[string]any{"name": "A\x00B"}},
		{name: "nul in the match column", fields: map[string]any{"email": "bad-1\x00@x"}},
		{name: "invalid utf-8", fields: map[string]any{"name": "A\xffB"}},
		{name: "nul in jsonb", fields: map[string]any{"attrs": map[string]any{"k": "\x00"}}},
		{name: "text for an integer", fields: map[string]any{"score": "abc"}},
		{name: "bool for an integer", fields: map[string]any{"score": true}},
		{name: "integer out of range", fields: map[string]any{"score": json.Number("99999999999")}},
		{name: "unknown column", fields: map[string]any{"nosuch": "1"}},
		{name: "nul in the system's id", fields: map[string]any{"name": "x"}, rawID: `"7\u0000"`},
		{name: "10 kB string", fields: map[string]any{"name": long}, applies: true},
		{name: "invalid utf-8 in the system's id", fields: map[string]any{"name": "y"}, rawID: "\"8\xff\"", applies: true},
	}
	var records []syncapi.Record
	for i, tt := range tests {
		good := rec(cdc.OpCreate, 1, fmt.Sprintf("good-%d", i), map[string]any{"email": fmt.Sprintf("good-%d@x", i), "name": "ok"})
		fields := map[string]any{"email": fmt.Sprintf("bad-%d@x", i)}
		for k, v := range tt.fields {
			fields[k] = v
		}
		bad := rec(cdc.OpCreate, 1, fmt.Sprintf("bad-%d", i), fields)
		if tt.rawID != "" {
			bad = withID(bad, tt.rawID)
		}
		records = append(records, good, bad)
	}
	res := write(t, w, records...)
	for i, tt := range tests {
		if err := res[2*i].Err; err != nil || row(t, url, fmt.Sprintf("good-%d@x", i)) == nil {
			t.Errorf("%s: the good record beside it: %v, row %v", tt.name, err, row(t, url, fmt.Sprintf("good-%d@x", i)))
		}
		err, email := res[2*i+1].Err, fmt.Sprint(records[2*i+1].Fields["email"])
		got := row(t, url, strings.ReplaceAll(email, "\x00", "")) // no row may hold the part before or after a NUL
		switch {
		case tt.applies && (err != nil || got == nil || got["name"] != tt.fields["name"]):
			t.Errorf("%s: %v, row %.40v; want it applied", tt.name, err, got)
		case !tt.applies && (!cdc.IsPermanent(err) || got != nil):
			t.Errorf("%s: %v (permanent %v), row %v; want a permanent error and no row", tt.name, err, cdc.IsPermanent(err), got)
		}
	}
}

// FuzzInboundApply writes a record with arbitrary values beside a good
// one, against real Postgres: the call never fails, the good record
// applies, and the other either applies with its text intact or fails
// permanently and leaves nothing.
func FuzzInboundApply(f *testing.F) {
	pg := cdctest.StartPostgres(f)
	url := hostileDB(f, pg, "fuzz")
	w, err := New("crm", testConfig(url), Inbound{}, config.Env{Log: zerolog.Nop()}) // logs of the fuzz target have no test to go to
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { w.Close(context.Background()) })
	for _, seed := range [][4]string{
		{"Ada", "7", `{"tier":"gold"}`, `"1"`},
		{"A\x00B", "7", `null`, `"2"`},
		{"A\xffB", "x", `{"k":"\u0000"}`, `"3\u0000"`},
		{strings.Repeat("z", 10_000), "99999999999", `[1,"\ud800"]`, "\"4\xff\""},
		{"", "true", `"\u0000"`, `5`},
		{"'); DROP TABLE contacts; --", "-0", `{"a":{"b":[null,1e400]}}`, `{"x":1}`},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, name, score, attrs, rawID string) {
		k := n.Add(1)
		fields := map[string]any{"email": fmt.Sprintf("fz-%d@x", k), "name": name, "score": score}
		var v any
		d := json.NewDecoder(strings.NewReader(attrs))
		d.UseNumber()
		if d.Decode(&v) == nil {
			fields["attrs"] = v
		}
		// Each input's change is newer than the last: one whose system id
		// an earlier input linked is then applied to the linked row, not
		// skipped as no newer than what was applied.
		bad := rec(cdc.OpCreate, int(k), fmt.Sprintf("fz-%d", k), fields)
		if json.Valid([]byte(rawID)) {
			bad = withID(bad, rawID)
		}
		good := rec(cdc.OpCreate, 1, fmt.Sprintf("fz-good-%d", k), map[string]any{"email": fmt.Sprintf("fz-good-%d@x", k)})
		res, err := w.Write(context.Background(), []syncapi.Record{bad, good})
		if err != nil {
			t.Fatalf("Write failed as a whole: %v", err)
		}
		if res[1].Err != nil || row(t, url, fmt.Sprintf("fz-good-%d@x", k)) == nil {
			t.Fatalf("the good record beside it: %v", res[1].Err)
		}
		got := row(t, url, fmt.Sprintf("fz-%d@x", k))
		switch {
		case res[0].Err == nil && (got == nil || got["name"] != name):
			t.Fatalf("applied, but the row holds %.60q, want %.60q", got["name"], name)
		case res[0].Err != nil && (!cdc.IsPermanent(res[0].Err) || got != nil):
			t.Fatalf("%v (permanent %v), row %v; want a permanent error and no row", res[0].Err, cdc.IsPermanent(res[0].Err), got != nil)
		}
	})
}
