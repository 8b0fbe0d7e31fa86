package pgwal

import (
	"testing"

	"github.com/cdcd-dev/cdcd/cdc"
)

// BenchmarkDecodeTxn decodes a single-row transaction: Begin, Insert of a
// typical 8-column row, Commit.
func BenchmarkDecodeTxn(b *testing.B) {
	d := NewDecoder(DecoderOptions{})
	rel := pgoRelation(relUsers, "public", "customers", 'd',
		pgoCol{name: "id", oid: 20, key: true}, pgoCol{name: "email", oid: 25}, pgoCol{name: "name", oid: 1043},
		pgoCol{name: "active", oid: 16}, pgoCol{name: "balance", oid: 1700}, pgoCol{name: "score", oid: 701},
		pgoCol{name: "created_at", oid: 1184}, pgoCol{name: "note", oid: 25})
	if _, _, err := d.Decode(rel, nil); err != nil {
		b.Fatal(err)
	}
	begin := pgoBegin(0x1000, testCommitTime, 1)
	ins := pgoInsert(relUsers, pgoText("123456789"), pgoText("ann.example@example.com"), pgoText("Ann Example"),
		pgoText("t"), pgoText("12345.67"), pgoText("0.875"), pgoText("2024-02-29 13:45:06.123456+00"), pgoNull)
	commit := pgoCommit(0x1000, 0x1030, testCommitTime)
	out := make([]cdc.Event, 0, 1)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		for _, m := range [][]byte{begin, ins, commit} {
			if out, _, err = d.Decode(m, out[:0]); err != nil {
				b.Fatal(err)
			}
		}
	}
}
