package pgwal

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

var testCommitTime = time.Date(2024, 2, 29, 13, 45, 6, 500000000, time.UTC)

func TestParseMessages(t *testing.T) {
	t.Parallel()
	t.Run("begin", func(t *testing.T) {
		m, err := parseBegin(pgoBegin(0x1_0000_00A0, testCommitTime, 742))
		want := beginMsg{finalLSN: 0x1_0000_00A0, commitTime: testCommitTime, xid: 742}
		if err != nil || m != want {
			t.Fatalf("got %+v, %v; want %+v", m, err, want)
		}
	})
	t.Run("commit", func(t *testing.T) {
		m, err := parseCommit(pgoCommit(0xA0, 0xD8, testCommitTime))
		want := commitMsg{commitLSN: 0xA0, endLSN: 0xD8, commitTime: testCommitTime}
		if err != nil || m != want {
			t.Fatalf("got %+v, %v; want %+v", m, err, want)
		}
	})
	t.Run("origin", func(t *testing.T) {
		m, err := parseOrigin(pgoOrigin(0xABCDEF, "cdcd:erp"))
		if err != nil || m.lsn != 0xABCDEF || string(m.name) != "cdcd:erp" {
			t.Fatalf("got %+v, %v", m, err)
		}
	})
	t.Run("relation", func(t *testing.T) {
		m, err := parseRelation(pgoRelation(16384, "", "t", 'd',
			pgoCol{name: "id", oid: 23, key: true}, pgoCol{name: "v", oid: 1043, mod: 14}))
		want := relationMsg{oid: 16384, namespace: "", name: "t", identity: 'd', cols: []relationColumn{
			{flags: 1, name: "id", typeOID: 23, typmod: -1}, {name: "v", typeOID: 1043, typmod: 14},
		}}
		if err != nil || !reflect.DeepEqual(m, want) {
			t.Fatalf("got %+v, %v; want %+v", m, err, want)
		}
	})
	t.Run("type", func(t *testing.T) {
		m, err := parseType(pgoType(16400, "public", "mood"))
		if err != nil || m != (typeMsg{oid: 16400, namespace: "public", name: "mood"}) {
			t.Fatalf("got %+v, %v", m, err)
		}
	})
	t.Run("insert", func(t *testing.T) {
		m, err := parseInsert(pgoInsert(7, pgoText("1"), pgoNull, pgoText("")), nil)
		want := []tupleValue{{'t', []byte("1")}, {kind: 'n'}, {'t', []byte{}}}
		if err != nil || m.rel != 7 || !reflect.DeepEqual(m.new, want) {
			t.Fatalf("got %+v, %v", m, err)
		}
	})
	t.Run("update with old key", func(t *testing.T) {
		m, err := parseUpdate(pgoUpdate(7, 'K', []pgoVal{pgoText("1"), pgoNull}, []pgoVal{pgoText("2"), pgoUnchanged}), nil, nil)
		if err != nil || m.oldKind != 'K' || len(m.old) != 2 || string(m.old[0].data) != "1" || m.new[1].kind != 'u' {
			t.Fatalf("got %+v, %v", m, err)
		}
	})
	t.Run("update without old", func(t *testing.T) {
		m, err := parseUpdate(pgoUpdate(7, 0, nil, []pgoVal{pgoText("2")}), nil, nil)
		if err != nil || m.oldKind != 0 || m.old != nil || string(m.new[0].data) != "2" {
			t.Fatalf("got %+v, %v", m, err)
		}
	})
	t.Run("delete", func(t *testing.T) {
		m, err := parseDelete(pgoDelete(7, 'O', pgoText("1"), pgoText("x")), nil)
		if err != nil || m.oldKind != 'O' || string(m.old[1].data) != "x" {
			t.Fatalf("got %+v, %v", m, err)
		}
	})
	t.Run("truncate", func(t *testing.T) {
		m, err := parseTruncate(pgoTruncate(3, 7, 8))
		if err != nil || m.options != 3 || !reflect.DeepEqual(m.rels, []uint32{7, 8}) {
			t.Fatalf("got %+v, %v", m, err)
		}
	})
	t.Run("message", func(t *testing.T) {
		m, err := parseLogicalMessage(pgoMessage(true, 0x99, "cdcd.origin", "hubspot"))
		if err != nil || !m.transactional || m.lsn != 0x99 || string(m.prefix) != "cdcd.origin" || string(m.content) != "hubspot" {
			t.Fatalf("got %+v, %v", m, err)
		}
	})
}

// TestParseTruncated checks that every strict prefix of a valid message, and
// the message with a trailing byte, is an error rather than a panic.
func TestParseTruncated(t *testing.T) {
	t.Parallel()
	parsers := map[byte]func([]byte) error{
		'B': func(b []byte) error { _, err := parseBegin(b); return err },
		'C': func(b []byte) error { _, err := parseCommit(b); return err },
		'O': func(b []byte) error { _, err := parseOrigin(b); return err },
		'R': func(b []byte) error { _, err := parseRelation(b); return err },
		'Y': func(b []byte) error { _, err := parseType(b); return err },
		'I': func(b []byte) error { _, err := parseInsert(b, nil); return err },
		'U': func(b []byte) error { _, err := parseUpdate(b, nil, nil); return err },
		'D': func(b []byte) error { _, err := parseDelete(b, nil); return err },
		'T': func(b []byte) error { _, err := parseTruncate(b); return err },
		'M': func(b []byte) error { _, err := parseLogicalMessage(b); return err },
	}
	msgs := [][]byte{
		pgoBegin(1, testCommitTime, 2),
		pgoCommit(1, 2, testCommitTime),
		pgoOrigin(1, "o"),
		pgoRelation(1, "public", "t", 'd', pgoCol{name: "id", oid: 23, key: true}),
		pgoType(1, "public", "mood"),
		pgoInsert(1, pgoText("abc"), pgoNull),
		pgoUpdate(1, 'O', []pgoVal{pgoText("a")}, []pgoVal{pgoText("b")}),
		pgoDelete(1, 'K', pgoText("a")),
		pgoTruncate(0, 1, 2),
		pgoMessage(false, 1, "p", "content"),
	}
	for _, m := range msgs {
		parse := parsers[m[0]]
		if err := parse(m); err != nil {
			t.Fatalf("%q: valid message: %v", m[0], err)
		}
		for n := 1; n < len(m); n++ {
			if err := parse(m[:n]); err == nil {
				t.Errorf("%q truncated to %d of %d bytes: no error", m[0], n, len(m))
			}
		}
		if err := parse(append(m[:len(m):len(m)], 0)); err == nil || !strings.Contains(err.Error(), "trailing") {
			t.Errorf("%q with a trailing byte: %v, want a trailing-bytes error", m[0], err)
		}
	}
}

func TestParseMalformed(t *testing.T) {
	t.Parallel()
	cases := map[string]func() error{
		"negative value length": func() error {
			_, err := parseInsert(pgoWire{'I'}.u32(1).u8('N').u16(1).u8('t').u32(0xFFFFFFFF), nil)
			return err
		},
		"bad tuple kind": func() error {
			_, err := parseInsert(pgoWire{'I'}.u32(1).u8('N').u16(1).u8('x'), nil)
			return err
		},
		"insert without N":   func() error { _, err := parseInsert(pgoWire{'I'}.u32(1).u8('K').u16(0), nil); return err },
		"delete without old": func() error { _, err := parseDelete(pgoWire{'D'}.u32(1).u8('N').u16(0), nil); return err },
		"huge column count": func() error {
			_, err := parseRelation(pgoWire{'R'}.u32(1).str("").str("t").u8('d').u16(0xFFFF))
			return err
		},
		"huge truncate count": func() error { _, err := parseTruncate(pgoWire{'T'}.u32(0xFFFFFFFF).u8(0)); return err },
		"negative message length": func() error {
			_, err := parseLogicalMessage(pgoWire{'M'}.u8(0).u64(1).str("p").u32(0x80000000))
			return err
		},
	}
	for name, parse := range cases {
		if err := parse(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseCommitTimeEpoch(t *testing.T) {
	t.Parallel()
	m, err := parseBegin(pgoWire{'B'}.u64(1).u64(0).u32(1))
	if err != nil || !m.commitTime.Equal(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) || m.commitTime.Location() != time.UTC {
		t.Fatalf("commit time %v, %v; want 2000-01-01 UTC", m.commitTime, err)
	}
}
