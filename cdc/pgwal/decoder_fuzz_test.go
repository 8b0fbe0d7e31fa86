package pgwal

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"testing"

	"github.com/cdcd-dev/cdcd/cdc"
)

// pgoFuzzRel has one column per value rule.
const pgoFuzzRel = 1

func pgoFuzzPrime() [][]byte {
	return [][]byte{
		pgoType(16500, "public", "mood"), pgoType(16501, "", "int4"), pgoType(16502, "public", "_mood"),
		pgoRelation(pgoFuzzRel, "public", "f", 'd',
			pgoCol{name: "id", oid: 23, key: true}, pgoCol{name: "f8", oid: 701}, pgoCol{name: "b", oid: 16},
			pgoCol{name: "j", oid: 3802}, pgoCol{name: "ts", oid: 1114}, pgoCol{name: "tz", oid: 1184},
			pgoCol{name: "by", oid: 17}, pgoCol{name: "t", oid: 25}, pgoCol{name: "ia", oid: 1007},
			pgoCol{name: "ta", oid: 1009}, pgoCol{name: "ja", oid: 3807}, pgoCol{name: "tza", oid: 1185},
			pgoCol{name: "boxes", oid: 1020}, pgoCol{name: "bya", oid: 1001}, pgoCol{name: "m", oid: 16500},
			pgoCol{name: "dom", oid: 16501}, pgoCol{name: "ma", oid: 16502}),
		pgoUsers('f'),
		pgoRelation(relOrders, "shop", "orders", 'n', pgoCol{name: "item", oid: 25}),
	}
}

// pgoFrame joins messages into one fuzz input, each prefixed by its
// 2-byte big-endian length.
func pgoFrame(msgs ...[]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(m)))
		b = append(b, m...)
	}
	return b
}

// FuzzDecode feeds a sequence of framed messages (see pgoFrame) to a
// decoder that already knows the relations of pgoFuzzPrime, the Postgres
// capture, and an open transaction. It must never panic, and every value
// of every event must be valid JSON.
func FuzzDecode(f *testing.F) {
	var captured [][]byte
	if _, err := os.Stat(pgCapturePath); err == nil {
		captured = pgReadCapture(f)
	}
	row := []pgoVal{pgoText("1"), pgoText("1e+300"), pgoText("t"), pgoText(`{"a": [1, 2]}`),
		pgoText("2024-02-29 13:45:06.5"), pgoText("2024-02-29 13:45:06.5+05:30"), pgoText(`\xdeadbeef`),
		pgoText("x\"y\n"), pgoText(`[0:1]={{1,NULL},{3,4}}`), pgoText(`{a,"b c",NULL,"d\"e","x\\y"}`),
		pgoText(`{"{\"a\": 1}",NULL}`), pgoText(`{"2024-02-29 13:45:06+00",infinity}`),
		pgoText(`{(1,1),(0,0);(2,2),(1,1)}`), pgoText(`{"\\xdead"}`), pgoText("happy"), pgoText("5"), pgoText(`{sad,"very happy"}`)}
	seeds := [][][]byte{
		{pgoInsert(pgoFuzzRel, row...)},
		{pgoUpdate(pgoFuzzRel, 'K', []pgoVal{pgoText("1"), pgoNull}, row), pgoDelete(pgoFuzzRel, 'K', row...)},
		{pgoUpdate(relUsers, 'O', []pgoVal{pgoText("1"), pgoText("a"), pgoNull}, []pgoVal{pgoText("1"), pgoUnchanged, pgoText("b")})},
		{pgoOrigin(1, "cdcd:erp"), pgoMessage(true, 2, "cdcd.origin", "crm"), pgoInsert(relOrders, pgoText("x"))},
		{pgoTruncate(3, pgoFuzzRel, relUsers, relOrders), pgoCommit(1, 2, testCommitTime), pgoMessage(false, 3, "p", "c")},
		{pgoCommit(1, 2, testCommitTime), pgoBegin(5, testCommitTime, 6), pgoRelation(relOrders, "", "r", 'i', pgoCol{name: "a", oid: 1231, key: true}),
			pgoInsert(relOrders, pgoText("{1.5,NaN}"))},
	}
	for _, s := range seeds {
		f.Add(pgoFrame(s...))
	}
	for _, m := range captured {
		f.Add(pgoFrame(m))
	}
	// The capture first: its relation OIDs may collide with the hand-built ones.
	prime := append(captured[:len(captured):len(captured)], pgoFuzzPrime()...)
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(DecoderOptions{PrimaryKey: func(_, table string) []string {
			if table == "users" {
				return []string{"id"}
			}
			return nil
		}})
		for _, m := range prime {
			if _, _, err := d.Decode(m, nil); err != nil {
				t.Fatalf("prime %q: %v", m[0], err)
			}
		}
		if _, _, err := d.Decode(pgoBegin(1, testCommitTime, 1), nil); err != nil {
			t.Fatal(err)
		}
		var events []cdc.Event
		for len(data) >= 2 {
			n := min(int(binary.BigEndian.Uint16(data)), len(data)-2)
			msg := data[2 : 2+n]
			data = data[2+n:]
			events, _, _ = d.Decode(msg, events)
		}
		for i := range events {
			e := &events[i]
			for _, r := range []cdc.Row{e.Key, e.Before, e.After} {
				for _, f := range r {
					if !json.Valid(f.Value) {
						t.Fatalf("event %d column %s: invalid JSON value %q", i, f.Name, f.Value)
					}
				}
			}
			if env := cdc.AppendEnvelope(nil, e, &goldenSource, goldenNow); !json.Valid(env) {
				t.Fatalf("event %d: invalid envelope %s", i, env)
			}
		}
	})
}
