package cdc

import (
	"encoding/json"
	"testing"
	"time"
)

// envelopeEvents are events one writer may take one after the other:
// rows of one table, another table's, other transactions', inbound events, a delete, TOASTed
// columns, names that need escaping, a row that loses a column.
func envelopeEvents() []Event {
	e := sampleEvent()
	read := Event{Op: OpRead, Source: SourcePostgres, Schema: "public", Table: "items",
		Key:        Row{{"id", json.RawMessage(`1`)}},
		After:      Row{{"id", json.RawMessage(`1`)}, {"name", json.RawMessage(`"a"`)}, {"at", json.RawMessage(`null`)}},
		CommitTime: time.UnixMilli(1700000000000), Pos: Position{CommitLSN: 99, Index: 1}, TxID: 7}
	read2 := read
	read2.After = Row{{"id", json.RawMessage(`2`)}, {"name", json.RawMessage(`"b"`)}, {"at", nil}}
	read2.Pos.Index = 2
	fewer := read
	fewer.After = Row{{"id", json.RawMessage(`3`)}, {"name", json.RawMessage(`"c"`)}}
	renamed := read
	renamed.After = Row{{"id", json.RawMessage(`4`)}, {"nom", json.RawMessage(`"d"`)}, {"at", json.RawMessage(`5`)}}
	odd := read
	odd.Schema, odd.Table = `we"ird`, "t\u2028"
	odd.After = Row{{`q"uote\`, json.RawMessage(`1`)}, {"ünï", json.RawMessage(`2`)}}
	del := Event{Op: OpDelete, Schema: "public", Table: "items", Key: read.Key, Before: read.Key}
	inbound := Event{Op: OpCreate, Source: "hubspot", Schema: "hubspot", Table: "contacts", DeliveryID: "d1",
		Partial: true, OriginHint: "x", After: Row{{"email", json.RawMessage(`"e"`)}}, CommitTime: time.UnixMilli(5)}
	empty := read
	empty.After, empty.Unchanged = Row{}, []string{"body"}
	// Another transaction: its LSN, its xid, its commit time alone changed.
	lsn, xid, at := read2, read2, read2
	lsn.Pos.CommitLSN++
	xid.TxID++
	at.CommitTime = at.CommitTime.Add(time.Second)
	return []Event{read, read2, read2, lsn, xid, at, fewer, read, renamed, e, read, odd, del, inbound, read, e, empty, read}
}

// Envelopes gives AppendEnvelope's bytes, whatever came before.
func TestEnvelopesMatchAppendEnvelope(t *testing.T) {
	srcs := []SourceInfo{{Name: "cdcd", DB: "app", Version: "1.0.0"}, {Name: "other", DB: "db\"2"}}
	var n Envelopes
	var got []byte
	for round := range 3 {
		for i, e := range envelopeEvents() {
			src := &srcs[(i+round)%len(srcs)]
			now := time.UnixMilli(1700000000999 + int64(i/2))
			want := AppendEnvelope(nil, &e, src, now)
			got = n.Append(got[:0], &e, src, now)
			if string(got) != string(want) {
				t.Fatalf("round %d event %d\n got %s\nwant %s", round, i, got, want)
			}
		}
	}
}

func FuzzEnvelopesMatchAppendEnvelope(f *testing.F) {
	f.Add("id", "name", "public", "items", "postgres", byte('r'), int64(1), "id", "nom", "public", "items2", "", byte('u'))
	f.Fuzz(func(t *testing.T, a1, a2, schema, table, source string, op byte, ms int64, b1, b2, schema2, table2, source2 string, op2 byte) {
		src := &SourceInfo{Name: "n", DB: "d", Version: "v"}
		var n Envelopes
		events := []Event{
			{Op: Op(op), Source: source, Schema: schema, Table: table, After: Row{{a1, json.RawMessage(`1`)}, {a2, nil}}, Pos: Position{CommitLSN: 1}},
			{Op: Op(op2), Source: source2, Schema: schema2, Table: table2, Before: Row{{b1, json.RawMessage(`2`)}}, After: Row{{b2, json.RawMessage(`3`)}}},
		}
		for i := range 4 {
			e := &events[i%2]
			now := time.UnixMilli(ms + int64(i/3))
			if got, want := n.Append(nil, e, src, now), AppendEnvelope(nil, e, src, now); string(got) != string(want) {
				t.Fatalf("event %d\n got %s\nwant %s", i, got, want)
			}
		}
	})
}

func BenchmarkEnvelopes(b *testing.B) {
	e := envelopeEvents()[0]
	src := &SourceInfo{Name: "cdcd", DB: "app", Version: "1.0.0"}
	now := time.Now()
	var buf []byte
	b.Run("AppendEnvelope", func(b *testing.B) {
		for b.Loop() {
			buf = AppendEnvelope(buf[:0], &e, src, now)
		}
	})
	b.Run("Envelopes", func(b *testing.B) {
		var n Envelopes
		for b.Loop() {
			buf = n.Append(buf[:0], &e, src, now)
		}
	})
}
