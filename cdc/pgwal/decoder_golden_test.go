package pgwal

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

var updateGolden = flag.Bool("update", false, "rewrite the testdata golden files (and the Postgres capture)")

var (
	goldenSource = cdc.SourceInfo{Name: "cdcd", DB: "app", Version: "test"}
	goldenNow    = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
)

// pgoGolden decodes msgs and compares their envelopes, one line per event
// (key, then envelope), with testdata/<name>.golden.
func pgoGolden(t *testing.T, name string, opts DecoderOptions, msgs [][]byte) {
	t.Helper()
	events, _ := pgoDecodeAll(t, NewDecoder(opts), msgs...)
	var got []byte
	for i := range events {
		key := cdc.AppendKey(nil, &events[i])
		env := cdc.AppendEnvelope(nil, &events[i], &goldenSource, goldenNow)
		if !json.Valid(key) || !json.Valid(env) {
			t.Errorf("event %d: invalid JSON:\n%s\n%s", i, key, env)
		}
		got = append(append(append(got, key...), '\n'), env...)
		got = append(got, '\n', '\n')
	}
	path := filepath.Join("testdata", name+".golden")
	if *updateGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs; got:\n%s", path, got)
	}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	at := testCommitTime
	cases := []struct {
		name string
		opts DecoderOptions
		msgs [][]byte
	}{
		{"crud", DecoderOptions{}, [][]byte{
			pgoBegin(0x1_0000_3000, at, 900), pgoUsers('d'),
			pgoInsert(relUsers, pgoText("1"), pgoText("Ann \"A\" O'Neil"), pgoNull),
			pgoUpdate(relUsers, 0, nil, []pgoVal{pgoText("1"), pgoText("Bea"), pgoUnchanged}),
			pgoUpdate(relUsers, 'K', []pgoVal{pgoText("1"), pgoNull, pgoNull}, []pgoVal{pgoText("2"), pgoText("Bea"), pgoText("line1\nline2")}),
			pgoDelete(relUsers, 'K', pgoText("2"), pgoNull, pgoNull),
			pgoCommit(0x1_0000_3000, 0x1_0000_3100, at),
		}},
		{"types", DecoderOptions{}, [][]byte{
			pgoBegin(0x4000, at, 901),
			pgoType(16500, "public", "mood"), pgoType(16501, "", "int4"), pgoType(16502, "public", "_mood"),
			pgoRelation(relOrders, "shop", "types", 'd',
				pgoCol{name: "id", oid: 20, key: true}, pgoCol{name: "i2", oid: 21}, pgoCol{name: "big", oid: 20},
				pgoCol{name: "num", oid: 1700}, pgoCol{name: "f8", oid: 701}, pgoCol{name: "fnan", oid: 701},
				pgoCol{name: "ok", oid: 16}, pgoCol{name: "c5", oid: 1042}, pgoCol{name: "u", oid: 2950},
				pgoCol{name: "j", oid: 114}, pgoCol{name: "jb", oid: 3802}, pgoCol{name: "d", oid: 1082},
				pgoCol{name: "tm", oid: 1083}, pgoCol{name: "ts", oid: 1114}, pgoCol{name: "tstz", oid: 1184},
				pgoCol{name: "tsinf", oid: 1184}, pgoCol{name: "iv", oid: 1186}, pgoCol{name: "by", oid: 17},
				pgoCol{name: "ta", oid: 1009}, pgoCol{name: "ia", oid: 1007}, pgoCol{name: "mood", oid: 16500},
				pgoCol{name: "dom", oid: 16501}, pgoCol{name: "moods", oid: 16502}, pgoCol{name: "bad", oid: 23}),
			pgoInsert(relOrders, pgoText("1"), pgoText("-32768"), pgoText("-9223372036854775808"),
				pgoText("12345.678900"), pgoText("1.2345678901234568e+17"), pgoText("-Infinity"),
				pgoText("t"), pgoText("ab   "), pgoText("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
				pgoText(`{"b": 1,   "a": [1,2]}`), pgoText(`{"a": 3, "b": 1}`), pgoText("0001-01-01 BC"),
				pgoText("13:45:06.123456"), pgoText("2024-02-29 13:45:06.5"), pgoText("2024-02-29 13:45:06.5+00"),
				pgoText("infinity"), pgoText("P1Y2M3DT4H5M6.7S"), pgoText(`\xdeadbeef`),
				pgoText(`{a,"b c",NULL,"d\"e","","NULL","x\\y","{z}"}`), pgoText(`[0:1]={{1,2},{3,4}}`),
				pgoText("happy"), pgoText("5"), pgoText(`{sad,"very happy"}`), pgoText("not-a-number")),
			pgoCommit(0x4000, 0x4100, at),
		}},
		{"origin", DecoderOptions{}, [][]byte{
			pgoBegin(0x5000, at, 902), pgoOrigin(0xABCDEF, "cdcd:erp"), pgoUsers('d'),
			pgoInsert(relUsers, pgoText("1"), pgoText("from erp"), pgoNull), pgoCommit(0x5000, 0x5100, at),
			pgoBegin(0x6000, at, 903), pgoMessage(true, 0x6000, "cdcd.origin", "hubspot"),
			pgoInsert(relUsers, pgoText("2"), pgoText("from hubspot"), pgoNull), pgoCommit(0x6000, 0x6100, at),
		}},
		{"full", DecoderOptions{PrimaryKey: func(string, string) []string { return []string{"id"} }}, [][]byte{
			pgoBegin(0x7000, at, 904), pgoUsers('f'),
			pgoUpdate(relUsers, 'O', []pgoVal{pgoText("1"), pgoText("Ann"), pgoNull}, []pgoVal{pgoText("1"), pgoText("Bea"), pgoNull}),
			pgoDelete(relUsers, 'O', pgoText("1"), pgoText("Bea"), pgoNull),
			pgoCommit(0x7000, 0x7100, at),
		}},
		{"truncate", DecoderOptions{}, [][]byte{
			pgoBegin(0x8000, at, 905), pgoUsers('d'), pgoRelation(relOrders, "shop", "orders", 'n', pgoCol{name: "item", oid: 25}),
			pgoInsert(relOrders, pgoText("keyless")),
			pgoTruncate(1, relUsers, relOrders), pgoCommit(0x8000, 0x8100, at),
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			pgoGolden(t, c.name, c.opts, c.msgs)
		})
	}
}

// TestGoldenPostgresCapture replays the messages TestDecodePostgres captured
// from a real server.
func TestGoldenPostgresCapture(t *testing.T) {
	t.Parallel()
	pk := func(schema, table string) []string {
		if table == "fullrow" {
			return []string{"id"}
		}
		return nil
	}
	pgoGolden(t, "pg15_stream", DecoderOptions{PrimaryKey: pk}, pgReadCapture(t))
}

// Every captured event carries its table's columns with their types, and
// its key and envelope conform to the Kafka Connect schemas built from
// them (what kafka.schemas writes).
func TestPostgresCaptureConformsToItsSchemas(t *testing.T) {
	t.Parallel()
	pk := func(schema, table string) []string {
		if schema == "public" && table == "fullrow" {
			return []string{"id"}
		}
		return nil
	}
	events, _ := pgoDecodeAll(t, NewDecoder(DecoderOptions{PrimaryKey: pk}), pgReadCapture(t)...)
	types := map[string]string{}
	for i := range events {
		e := &events[i]
		if e.Relation == nil {
			t.Fatalf("event %d (%s.%s) has no relation", i, e.Schema, e.Table)
		}
		topic := "cdcd." + e.Schema + "." + e.Table
		if e.Key != nil {
			if err := cdctest.CheckSchema(cdc.KeySchema(e.Relation, topic), cdc.AppendKey(nil, e)); err != nil {
				t.Errorf("event %d key: %v", i, err)
			}
		}
		env := cdc.AppendEnvelope(nil, e, &goldenSource, goldenNow)
		// A Postgres array type does not say how many dimensions its
		// values have: a schema block describes one, as Debezium's does.
		if err := cdctest.CheckSchema(cdc.EnvelopeSchema(e.Relation, topic), env); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "$.after.ia[") {
					t.Errorf("event %d (%s.%s %c): %s", i, e.Schema, e.Table, e.Op, line)
				}
			}
		}
		if e.Table == "types" {
			for _, c := range e.Relation.Columns {
				types[c.Name] = c.Type
			}
		}
	}
	for col, want := range map[string]string{
		"id": "int8", "i2": "int2", "num": "numeric", "ta": "_text", "ia": "_int4", "j": "json", "jb": "jsonb",
		"tstz": "timestamptz", "m": "mood", "ma": "_mood", "dom": "int4", "ip": "inet", "by": "bytea",
	} {
		if types[col] != want {
			t.Errorf("column %s: type %q, want %q", col, types[col], want)
		}
	}
}
