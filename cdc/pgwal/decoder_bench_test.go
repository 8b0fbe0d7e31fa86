package pgwal

import (
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/cdcd-dev/cdcd/cdc"
)

// BenchmarkDecodeInsert decodes the Insert of a typical 8-column row.
func BenchmarkDecodeInsert(b *testing.B) {
	d := NewDecoder(DecoderOptions{})
	setup := [][]byte{
		pgoBegin(0x1000, testCommitTime, 1),
		pgoRelation(relUsers, "public", "customers", 'd',
			pgoCol{name: "id", oid: 20, key: true}, pgoCol{name: "email", oid: 25}, pgoCol{name: "name", oid: 1043},
			pgoCol{name: "active", oid: 16}, pgoCol{name: "balance", oid: 1700}, pgoCol{name: "score", oid: 701},
			pgoCol{name: "created_at", oid: 1184}, pgoCol{name: "note", oid: 25}),
	}
	for _, m := range setup {
		if _, _, err := d.Decode(m, nil); err != nil {
			b.Fatal(err)
		}
	}
	msg := pgoInsert(relUsers, pgoText("123456789"), pgoText("ann.example@example.com"), pgoText("Ann Example"),
		pgoText("t"), pgoText("12345.67"), pgoText("0.875"), pgoText("2024-02-29 13:45:06.123456+00"), pgoNull)
	out := make([]cdc.Event, 0, 1)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		out, _, err = d.Decode(msg, out[:0])
		if err != nil {
			b.Fatal(err)
		}
	}
	if got := pgoRowJSON(out[0].After); got != `{"id":123456789,"email":"ann.example@example.com","name":"Ann Example",`+
		`"active":true,"balance":"12345.67","score":0.875,"created_at":"2024-02-29T13:45:06.123456Z","note":null}` {
		b.Fatalf("after %s", got)
	}
}

// BenchmarkParseInsert compares the two parsers of an 8-column Insert:
// cdcd's readTuple, which aliases values in the message, and pglogrepl's,
// which allocates per column and copies each value. It is why the row
// messages are parsed in message.go (see the comment there).
func BenchmarkParseInsert(b *testing.B) {
	msg := pgoInsert(relUsers, pgoText("123456789"), pgoText("ann.example@example.com"), pgoText("Ann Example"),
		pgoText("t"), pgoText("12345.67"), pgoText("0.875"), pgoText("2024-02-29 13:45:06.123456+00"), pgoNull)
	b.Run("cdcd", func(b *testing.B) {
		var scratch []tupleValue
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for b.Loop() {
			m, err := parseInsert(msg, scratch)
			if err != nil {
				b.Fatal(err)
			}
			scratch = m.new
		}
	})
	b.Run("pglogrepl", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := pglogrepl.Parse(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
}
