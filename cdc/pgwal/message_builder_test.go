package pgwal

import (
	"encoding/binary"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

// pgEpochMicros is 2000-01-01 00:00:00 UTC, the Postgres epoch, in Unix
// microseconds.
const pgEpochMicros = 946684800 * 1_000_000

// pgoWire builds pgoutput v1 messages byte by byte for tests.
type pgoWire []byte

func (w pgoWire) u8(v uint8) pgoWire   { return append(w, v) }
func (w pgoWire) u16(v uint16) pgoWire { return binary.BigEndian.AppendUint16(w, v) }
func (w pgoWire) u32(v uint32) pgoWire { return binary.BigEndian.AppendUint32(w, v) }
func (w pgoWire) u64(v uint64) pgoWire { return binary.BigEndian.AppendUint64(w, v) }
func (w pgoWire) str(s string) pgoWire { return append(append(w, s...), 0) }
func (w pgoWire) ts(t time.Time) pgoWire {
	return w.u64(uint64(t.UnixMicro() - pgEpochMicros))
}

// pgoCol is one column of a Relation message.
type pgoCol struct {
	name  string
	oid   uint32
	key   bool
	mod   int32
	flags uint8 // overrides key when set
}

// pgoVal is one TupleData column: kind 'n', 'u', 't' or 'b'.
type pgoVal struct {
	kind byte
	data string
}

func pgoText(s string) pgoVal { return pgoVal{'t', s} }

var (
	pgoNull      = pgoVal{kind: 'n'}
	pgoUnchanged = pgoVal{kind: 'u'}
)

func (w pgoWire) tuple(vals []pgoVal) pgoWire {
	w = w.u16(uint16(len(vals)))
	for _, v := range vals {
		w = w.u8(v.kind)
		if v.kind == 't' || v.kind == 'b' {
			w = w.u32(uint32(len(v.data)))
			w = append(w, v.data...)
		}
	}
	return w
}

func pgoBegin(final cdc.LSN, at time.Time, xid uint32) []byte {
	return pgoWire{'B'}.u64(uint64(final)).ts(at).u32(xid)
}

func pgoCommit(commit, end cdc.LSN, at time.Time) []byte {
	return pgoWire{'C'}.u8(0).u64(uint64(commit)).u64(uint64(end)).ts(at)
}

func pgoOrigin(lsn cdc.LSN, name string) []byte {
	return pgoWire{'O'}.u64(uint64(lsn)).str(name)
}

func pgoRelation(oid uint32, ns, name string, identity byte, cols ...pgoCol) []byte {
	w := pgoWire{'R'}.u32(oid).str(ns).str(name).u8(identity).u16(uint16(len(cols)))
	for _, c := range cols {
		flags := c.flags
		if c.key {
			flags |= 1
		}
		mod := c.mod
		if mod == 0 {
			mod = -1
		}
		w = w.u8(flags).str(c.name).u32(c.oid).u32(uint32(mod))
	}
	return w
}

func pgoType(oid uint32, ns, name string) []byte {
	return pgoWire{'Y'}.u32(oid).str(ns).str(name)
}

func pgoInsert(rel uint32, vals ...pgoVal) []byte {
	return pgoWire{'I'}.u32(rel).u8('N').tuple(vals)
}

// pgoUpdate builds an Update; oldKind 0 sends no old tuple.
func pgoUpdate(rel uint32, oldKind byte, old, new []pgoVal) []byte {
	w := pgoWire{'U'}.u32(rel)
	if oldKind != 0 {
		w = w.u8(oldKind).tuple(old)
	}
	return w.u8('N').tuple(new)
}

func pgoDelete(rel uint32, oldKind byte, old ...pgoVal) []byte {
	return pgoWire{'D'}.u32(rel).u8(oldKind).tuple(old)
}

func pgoTruncate(options uint8, rels ...uint32) []byte {
	w := pgoWire{'T'}.u32(uint32(len(rels))).u8(options)
	for _, r := range rels {
		w = w.u32(r)
	}
	return w
}

func pgoMessage(transactional bool, lsn cdc.LSN, prefix, content string) []byte {
	var flags uint8
	if transactional {
		flags = 1
	}
	return pgoWire{'M'}.u8(flags).u64(uint64(lsn)).str(prefix).u32(uint32(len(content))).append(content)
}

func (w pgoWire) append(s string) pgoWire { return append(w, s...) }
