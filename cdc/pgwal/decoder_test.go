package pgwal

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
)

// pgoRowJSON renders a row as a JSON object ("null" for a nil row).
func pgoRowJSON(r cdc.Row) string { return string(cdc.AppendKey(nil, &cdc.Event{Key: r})) }

// pgoDecodeAll feeds msgs to d, failing the test on an error.
func pgoDecodeAll(t *testing.T, d *Decoder, msgs ...[]byte) ([]cdc.Event, []Step) {
	t.Helper()
	var events []cdc.Event
	var steps []Step
	for i, m := range msgs {
		var step Step
		var err error
		events, step, err = d.Decode(m, events)
		if err != nil {
			t.Fatalf("message %d (%q): %v", i, m[0], err)
		}
		steps = append(steps, step)
	}
	return events, steps
}

const (
	relUsers  = 16390
	relOrders = 16391
)

// pgoUsers describes public.users (id int4 key, name text, bio text).
func pgoUsers(identity byte) []byte {
	return pgoRelation(relUsers, "public", "users", identity,
		pgoCol{name: "id", oid: 23, key: identity != 'n'}, pgoCol{name: "name", oid: 25, key: identity == 'f'},
		pgoCol{name: "bio", oid: 25, key: identity == 'f'})
}

func TestDecodeTransaction(t *testing.T) {
	t.Parallel()
	d := NewDecoder(DecoderOptions{Log: zerolog.New(zerolog.NewTestWriter(t))})
	events, steps := pgoDecodeAll(t, d,
		pgoBegin(0x3000, testCommitTime, 900),
		pgoUsers('d'),
		pgoInsert(relUsers, pgoText("1"), pgoText("ann"), pgoNull),
		pgoUpdate(relUsers, 0, nil, []pgoVal{pgoText("1"), pgoText("bea"), pgoUnchanged}),
		pgoUpdate(relUsers, 'K', []pgoVal{pgoText("1"), pgoNull, pgoNull}, []pgoVal{pgoText("2"), pgoText("bea"), pgoText("hi")}),
		pgoDelete(relUsers, 'K', pgoText("2"), pgoNull, pgoNull),
		pgoCommit(0x3000, 0x3040, testCommitTime),
	)
	wantSteps := []Step{StepBegin, StepNone, StepChange, StepChange, StepChange, StepChange, StepCommit}
	if !reflect.DeepEqual(steps, wantSteps) {
		t.Fatalf("steps %v, want %v", steps, wantSteps)
	}
	if txn := d.Txn(); txn != (TxnInfo{CommitLSN: 0x3000, EndLSN: 0x3040, CommitTime: testCommitTime, Xid: 900}) {
		t.Fatalf("txn %+v", txn)
	}
	want := []struct {
		op                 cdc.Op
		key, before, after string
		unchanged          []string
	}{
		{cdc.OpCreate, `{"id":1}`, `null`, `{"id":1,"name":"ann","bio":null}`, nil},
		{cdc.OpUpdate, `{"id":1}`, `null`, `{"id":1,"name":"bea"}`, []string{"bio"}},
		{cdc.OpUpdate, `{"id":2}`, `{"id":1}`, `{"id":2,"name":"bea","bio":"hi"}`, nil},
		{cdc.OpDelete, `{"id":2}`, `{"id":2}`, `null`, nil},
	}
	if len(events) != len(want) {
		t.Fatalf("%d events, want %d", len(events), len(want))
	}
	for i, w := range want {
		e := events[i]
		got := []string{pgoRowJSON(e.Key), pgoRowJSON(e.Before), pgoRowJSON(e.After)}
		if e.Op != w.op || !reflect.DeepEqual(got, []string{w.key, w.before, w.after}) || !reflect.DeepEqual(e.Unchanged, w.unchanged) {
			t.Errorf("event %d: op %v key/before/after %v unchanged %v; want %v %v %v", i, e.Op, got, e.Unchanged, w.op, []string{w.key, w.before, w.after}, w.unchanged)
		}
		wantPos := cdc.Position{CommitLSN: 0x3000, Index: uint32(i)}
		if e.Source != cdc.SourcePostgres || e.Origin != "" || e.Schema != "public" || e.Table != "users" ||
			e.Pos != wantPos || e.TxID != 900 || !e.CommitTime.Equal(testCommitTime) || e.Ack != nil {
			t.Errorf("event %d: %+v", i, e)
		}
	}
}

// TestDecodeUnchangedToastNeverNull guards against turning an unchanged
// TOASTed value into null: it must be absent from After and listed.
func TestDecodeUnchangedToastNeverNull(t *testing.T) {
	t.Parallel()
	d := NewDecoder(DecoderOptions{})
	events, _ := pgoDecodeAll(t, d, pgoBegin(1, testCommitTime, 1), pgoUsers('d'),
		pgoUpdate(relUsers, 0, nil, []pgoVal{pgoText("1"), pgoUnchanged, pgoUnchanged}))
	e := events[0]
	if _, ok := e.After.Get("bio"); ok || pgoRowJSON(e.After) != `{"id":1}` || !reflect.DeepEqual(e.Unchanged, []string{"name", "bio"}) {
		t.Fatalf("after %s unchanged %v", pgoRowJSON(e.After), e.Unchanged)
	}
}

func TestDecodeReplicaIdentityFull(t *testing.T) {
	t.Parallel()
	msgs := [][]byte{
		pgoBegin(1, testCommitTime, 1), pgoUsers('f'),
		pgoUpdate(relUsers, 'O', []pgoVal{pgoText("1"), pgoText("ann"), pgoNull}, []pgoVal{pgoText("1"), pgoText("bea"), pgoNull}),
		pgoDelete(relUsers, 'O', pgoText("1"), pgoText("bea"), pgoNull),
	}
	cases := []struct {
		name    string
		pk      func(schema, table string) []string
		wantKey string
		warns   int
	}{
		{"primary key known", func(s, tb string) []string {
			if s == "public" && tb == "users" {
				return []string{"id"}
			}
			return nil
		}, `{"id":1}`, 0},
		{"no lookup", nil, `{"id":1,"name":"%s","bio":null}`, 0},
		{"empty answer", func(string, string) []string { return nil }, `{"id":1,"name":"%s","bio":null}`, 0},
		{"unknown column", func(string, string) []string { return []string{"nope"} }, `{"id":1,"name":"%s","bio":null}`, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			d := NewDecoder(DecoderOptions{Log: zerolog.New(&logs), PrimaryKey: c.pk})
			events, _ := pgoDecodeAll(t, d, msgs...)
			for i, name := range []string{"bea", "bea"} {
				want := strings.Replace(c.wantKey, "%s", name, 1)
				if got := pgoRowJSON(events[i].Key); got != want {
					t.Errorf("event %d key %s, want %s", i, got, want)
				}
			}
			if got := pgoRowJSON(events[0].Before); got != `{"id":1,"name":"ann","bio":null}` {
				t.Errorf("update before %s", got)
			}
			if got := pgoRowJSON(events[1].Before); got != `{"id":1,"name":"bea","bio":null}` || events[1].After != nil {
				t.Errorf("delete before %s after %v", got, events[1].After)
			}
			if n := strings.Count(logs.String(), `"level":"warn"`); n != c.warns {
				t.Errorf("%d warnings, want %d: %s", n, c.warns, logs.String())
			}
		})
	}
}

func TestDecodeKeylessWarnsOncePerRelation(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	d := NewDecoder(DecoderOptions{Log: zerolog.New(&logs)})
	nothing := pgoUsers('n')
	noKey := pgoRelation(relOrders, "shop", "orders", 'd', pgoCol{name: "item", oid: 25})
	events, _ := pgoDecodeAll(t, d,
		pgoBegin(1, testCommitTime, 1), nothing, noKey,
		pgoInsert(relUsers, pgoText("1"), pgoText("secret-name"), pgoNull),
		pgoInsert(relOrders, pgoText("secret-item")),
		nothing, noKey, // re-sent in a later session
		pgoInsert(relOrders, pgoText("secret-item")),
	)
	for i, e := range events {
		if e.Key != nil || e.After == nil {
			t.Errorf("event %d: key %v after %v, want nil key and a row", i, e.Key, e.After)
		}
	}
	out := logs.String()
	if n := strings.Count(out, `"level":"warn"`); n != 2 {
		t.Fatalf("%d warnings, want 2: %s", n, out)
	}
	for _, want := range []string{`"table":"users"`, `"table":"orders"`, "REPLICA IDENTITY FULL", "primary key"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s: %s", want, out)
		}
	}
	if strings.Contains(out, "secret") {
		t.Errorf("log contains row values: %s", out)
	}
}

func TestDecodeOrigin(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		marker []byte
		want   string
	}{
		{"cdcd replication origin", pgoOrigin(0xABCDEF, "cdcd:erp"), "erp"},
		{"foreign replication origin", pgoOrigin(0xABCDEF, "pglogical_node1"), "pglogical_node1"},
		{"cdcd.origin message", pgoMessage(true, 2, "cdcd.origin", "hubspot"), "hubspot"},
		{"other transactional message", pgoMessage(true, 2, "app.audit", "hubspot"), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := NewDecoder(DecoderOptions{})
			events, steps := pgoDecodeAll(t, d, pgoBegin(1, testCommitTime, 1), c.marker, pgoUsers('d'),
				pgoInsert(relUsers, pgoText("1"), pgoNull, pgoNull), pgoTruncate(0, relUsers), pgoCommit(1, 9, testCommitTime))
			if steps[1] != StepNone {
				t.Errorf("marker step %v, want StepNone", steps[1])
			}
			for i, e := range events {
				if e.Origin != c.want {
					t.Errorf("event %d origin %q, want %q", i, e.Origin, c.want)
				}
			}
			if d.Txn().Origin != c.want {
				t.Errorf("txn origin %q, want %q", d.Txn().Origin, c.want)
			}
			// The next transaction starts without an origin.
			events, _ = pgoDecodeAll(t, d, pgoBegin(20, testCommitTime, 2), pgoInsert(relUsers, pgoText("2"), pgoNull, pgoNull))
			if events[0].Origin != "" {
				t.Errorf("next transaction origin %q, want none", events[0].Origin)
			}
		})
	}
}

func TestDecodeNonTransactionalMessage(t *testing.T) {
	t.Parallel()
	d := NewDecoder(DecoderOptions{})
	data := pgoMessage(false, 0x5000, "cdcd.heartbeat", "beat")
	out, step, err := d.Decode(data, nil)
	if err != nil || step != StepMessage || len(out) != 0 {
		t.Fatalf("step %v, %d events, %v", step, len(out), err)
	}
	copy(data[len(data)-4:], "XXXX") // the decoder must not retain data
	want := LogicalMessage{LSN: 0x5000, Prefix: "cdcd.heartbeat", Content: []byte("beat")}
	if got := d.Message(); !reflect.DeepEqual(got, want) {
		t.Fatalf("message %+v, want %+v", got, want)
	}
}

func TestDecodeTruncateSeveralRelations(t *testing.T) {
	t.Parallel()
	d := NewDecoder(DecoderOptions{})
	events, steps := pgoDecodeAll(t, d, pgoBegin(0x70, testCommitTime, 5), pgoUsers('d'),
		pgoRelation(relOrders, "shop", "orders", 'd', pgoCol{name: "id", oid: 20, key: true}),
		pgoInsert(relUsers, pgoText("1"), pgoNull, pgoNull),
		pgoTruncate(1|2, relUsers, relOrders), pgoCommit(0x70, 0x90, testCommitTime))
	if steps[4] != StepChange || len(events) != 3 {
		t.Fatalf("truncate step %v, %d events", steps[4], len(events))
	}
	for i, want := range []string{"users", "orders"} {
		e := events[i+1]
		if e.Op != cdc.OpTruncate || e.Table != want || e.Key != nil || e.Before != nil || e.After != nil || e.Pos.Index != uint32(i+1) {
			t.Errorf("event %d: %+v", i+1, e)
		}
	}
	if _, _, err := d.Decode(pgoTruncate(0, relUsers, 4242), nil); err == nil {
		t.Error("truncate of an unknown relation: no error")
	}
}

// TestDecodeRelationReplaced covers ALTER TABLE ADD COLUMN: the server
// re-sends 'R' and later tuples have the new column count.
func TestDecodeRelationReplaced(t *testing.T) {
	t.Parallel()
	d := NewDecoder(DecoderOptions{})
	events, _ := pgoDecodeAll(t, d, pgoBegin(1, testCommitTime, 1),
		pgoRelation(relOrders, "shop", "orders", 'd', pgoCol{name: "id", oid: 23, key: true}),
		pgoInsert(relOrders, pgoText("1")),
		pgoRelation(relOrders, "shop", "orders", 'd', pgoCol{name: "id", oid: 23, key: true}, pgoCol{name: "qty", oid: 21}),
		pgoInsert(relOrders, pgoText("2"), pgoText("7")))
	if got := pgoRowJSON(events[1].After); got != `{"id":2,"qty":7}` {
		t.Fatalf("after %s", got)
	}
	if _, _, err := d.Decode(pgoInsert(relOrders, pgoText("3")), nil); err == nil || !strings.Contains(err.Error(), "tuple has 1 columns, relation has 2") {
		t.Fatalf("old column count: %v", err)
	}
}

func TestDecodeResetKeepsRelations(t *testing.T) {
	t.Parallel()
	d := NewDecoder(DecoderOptions{})
	pgoDecodeAll(t, d, pgoBegin(1, testCommitTime, 1), pgoOrigin(1, "cdcd:erp"), pgoUsers('d'),
		pgoInsert(relUsers, pgoText("1"), pgoNull, pgoNull))
	d.Reset()
	if txn := d.Txn(); txn != (TxnInfo{}) {
		t.Fatalf("txn after reset %+v", txn)
	}
	if _, _, err := d.Decode(pgoCommit(1, 2, testCommitTime), nil); err == nil {
		t.Fatal("commit after reset: no error")
	}
	events, _ := pgoDecodeAll(t, d, pgoBegin(1, testCommitTime, 1), pgoInsert(relUsers, pgoText("1"), pgoNull, pgoNull))
	if e := events[0]; e.Table != "users" || e.Pos.Index != 0 || e.Origin != "" {
		t.Fatalf("event after reset %+v", e)
	}
}

func TestDecodeUserTypes(t *testing.T) {
	t.Parallel()
	d := NewDecoder(DecoderOptions{})
	events, _ := pgoDecodeAll(t, d, pgoBegin(1, testCommitTime, 1),
		pgoType(16500, "public", "mood"),
		pgoType(16501, "", "int4"),        // domain over int4
		pgoType(16502, "public", "_mood"), // mood[]
		pgoType(16503, "", "_int4"),       // domain over int4[]
		pgoType(16504, "", "timestamptz"), // domain over timestamptz
		pgoRelation(relOrders, "", "t", 'd', pgoCol{name: "mood", oid: 16500}, pgoCol{name: "qty", oid: 16501},
			pgoCol{name: "moods", oid: 16502}, pgoCol{name: "nums", oid: 16503}, pgoCol{name: "at", oid: 16504},
			pgoCol{name: "ext", oid: 17000}),
		pgoInsert(relOrders, pgoText("happy"), pgoText("5"), pgoText(`{sad,"very happy",NULL}`), pgoText("{1,2}"),
			pgoText("2024-02-29 13:45:06.5+00"), pgoText("(1,2)")))
	want := `{"mood":"happy","qty":5,"moods":["sad","very happy",null],"nums":[1,2],"at":"2024-02-29T13:45:06.500000Z","ext":"(1,2)"}`
	if got := pgoRowJSON(events[0].After); got != want {
		t.Fatalf("after %s\nwant  %s", got, want)
	}
	if events[0].Schema != "pg_catalog" || events[0].Key != nil {
		t.Fatalf("schema %q key %v", events[0].Schema, events[0].Key)
	}
}

func TestDecodeCopiesValues(t *testing.T) {
	t.Parallel()
	d := NewDecoder(DecoderOptions{})
	pgoDecodeAll(t, d, pgoBegin(1, testCommitTime, 1), pgoUsers('d'))
	data := pgoInsert(relUsers, pgoText("1"), pgoText("ann"), pgoText("bio"))
	events, _ := pgoDecodeAll(t, d, data)
	for i := range data {
		data[i] = 'X'
	}
	if got := pgoRowJSON(events[0].After); got != `{"id":1,"name":"ann","bio":"bio"}` {
		t.Fatalf("after %s", got)
	}
	// Appending to one value must not overwrite the next.
	_ = append(events[0].After[0].Value, "zzzz"...)
	if got := pgoRowJSON(events[0].After); got != `{"id":1,"name":"ann","bio":"bio"}` {
		t.Fatalf("after append %s", got)
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	setup := [][]byte{pgoBegin(1, testCommitTime, 1), pgoUsers('d')}
	cases := []struct {
		name string
		msgs [][]byte
		want string
	}{
		{"empty", [][]byte{{}}, "empty"},
		{"unknown type", [][]byte{{'Z', 1, 2}}, "unknown message type 'Z'"},
		{"unknown relation", append(setup, pgoInsert(4242, pgoText("1"))), "unknown relation oid 4242"},
		{"truncate unknown relation", append(setup, pgoTruncate(0, relUsers, 4242)), "unknown relation oid 4242"},
		{"bad begin", [][]byte{pgoBegin(1, testCommitTime, 1)[:5]}, "truncated"},
		{"column count", append(setup, pgoInsert(relUsers, pgoText("1"))), "tuple has 1 columns, relation has 3"},
		{"old column count", append(setup, pgoDelete(relUsers, 'K', pgoText("1"))), "tuple has 1 columns"},
		{"binary value", append(setup, pgoInsert(relUsers, pgoText("1"), pgoVal{'b', "x"}, pgoNull)), "binary format"},
		{"change outside transaction", [][]byte{pgoUsers('d'), pgoInsert(relUsers, pgoText("1"), pgoNull, pgoNull)}, "no transaction is open"},
		{"truncate outside transaction", [][]byte{pgoUsers('d'), pgoTruncate(0, relUsers)}, "no transaction is open"},
		{"nested begin", append(setup, pgoBegin(2, testCommitTime, 2)), "still open"},
		{"commit mismatch", append(setup, pgoCommit(2, 3, testCommitTime)), "differs"},
		{"commit without begin", [][]byte{pgoCommit(2, 3, testCommitTime)}, "no transaction is open"},
		{"truncated insert", append(setup, pgoInsert(relUsers, pgoText("1"), pgoNull, pgoNull)[:12]), "truncated"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := NewDecoder(DecoderOptions{})
			sentinel := []cdc.Event{{Table: "earlier"}}
			var err error
			var step Step
			out := sentinel
			for _, m := range c.msgs {
				if out, step, err = d.Decode(m, out); err != nil {
					break
				}
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || step != StepNone {
				t.Fatalf("error %v, step %v; want one containing %q and StepNone", err, step, c.want)
			}
			if len(out) != 1 || out[0].Table != "earlier" {
				t.Fatalf("out changed on error: %d events", len(out))
			}
		})
	}
}
