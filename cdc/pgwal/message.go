package pgwal

import (
	"encoding/binary"
	"fmt"

	"github.com/jackc/pglogrepl"
)

// pgoutput v1 message types: the first byte of an XLogData payload.
const (
	msgBegin    = byte(pglogrepl.MessageTypeBegin)
	msgCommit   = byte(pglogrepl.MessageTypeCommit)
	msgOrigin   = byte(pglogrepl.MessageTypeOrigin)
	msgRelation = byte(pglogrepl.MessageTypeRelation)
	msgType     = byte(pglogrepl.MessageTypeType)
	msgInsert   = byte(pglogrepl.MessageTypeInsert)
	msgUpdate   = byte(pglogrepl.MessageTypeUpdate)
	msgDelete   = byte(pglogrepl.MessageTypeDelete)
	msgTruncate = byte(pglogrepl.MessageTypeTruncate)
	msgMessage  = byte(pglogrepl.MessageTypeMessage)
)

// The row messages (Insert, Update, Delete) are parsed here rather than by
// pglogrepl: they are the capture path's hot loop, and pglogrepl's
// TupleData allocates a TupleDataColumn per column and copies each value
// byte by byte (BenchmarkParseInsert: see docs/benchmarks.md), where
// readTuple aliases the values in the message. It also trusts the column
// count and lengths it reads, which readTuple checks.

// wireReader reads the big-endian fields of one pgoutput message. The first
// read past the end or a malformed field records an error; later reads
// return zero values, so a parser checks err once at the end.
type wireReader struct {
	msg string // message kind, for errors
	b   []byte
	off int
	err error
}

func (r *wireReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("decode pgoutput %s message: truncated or malformed %s at byte %d of %d", r.msg, what, r.off, len(r.b))
	}
}

func (r *wireReader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.fail(what)
		return nil
	}
	p := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return p
}

func (r *wireReader) uint8(what string) uint8 {
	p := r.take(1, what)
	if p == nil {
		return 0
	}
	return p[0]
}

func (r *wireReader) uint16(what string) uint16 {
	p := r.take(2, what)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint16(p)
}

func (r *wireReader) uint32(what string) uint32 {
	p := r.take(4, what)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint32(p)
}

// done reports the first error, or an error if bytes are left over: every
// pgoutput v1 message has an exact layout.
func (r *wireReader) done() error {
	if r.err == nil && r.off != len(r.b) {
		r.err = fmt.Errorf("decode pgoutput %s message: %d unexpected trailing bytes", r.msg, len(r.b)-r.off)
	}
	return r.err
}

// insertMsg, updateMsg and deleteMsg hold tuples whose values alias the
// input buffer.
type insertMsg struct {
	rel uint32
	new []tupleValue
}

func parseInsert(b []byte, scratch []tupleValue) (insertMsg, error) {
	r := wireReader{msg: "insert", b: b, off: 1}
	m := insertMsg{rel: r.uint32("relation oid")}
	if k := r.uint8("tuple kind"); r.err == nil && k != 'N' {
		return m, fmt.Errorf("decode pgoutput insert message: tuple kind %q, want 'N'", k)
	}
	m.new = readTuple(&r, scratch)
	return m, r.done()
}

type updateMsg struct {
	rel     uint32
	oldKind byte // 'K' key columns, 'O' full old row, 0 none sent
	old     []tupleValue
	new     []tupleValue
}

func parseUpdate(b []byte, oldScratch, newScratch []tupleValue) (updateMsg, error) {
	r := wireReader{msg: "update", b: b, off: 1}
	m := updateMsg{rel: r.uint32("relation oid")}
	k := r.uint8("tuple kind")
	if k == 'K' || k == 'O' {
		m.oldKind = k
		m.old = readTuple(&r, oldScratch)
		k = r.uint8("tuple kind")
	}
	if r.err == nil && k != 'N' {
		return m, fmt.Errorf("decode pgoutput update message: tuple kind %q, want 'K', 'O' or 'N'", k)
	}
	m.new = readTuple(&r, newScratch)
	return m, r.done()
}

type deleteMsg struct {
	rel     uint32
	oldKind byte // 'K' or 'O'
	old     []tupleValue
}

func parseDelete(b []byte, scratch []tupleValue) (deleteMsg, error) {
	r := wireReader{msg: "delete", b: b, off: 1}
	m := deleteMsg{rel: r.uint32("relation oid"), oldKind: r.uint8("tuple kind")}
	if r.err == nil && m.oldKind != 'K' && m.oldKind != 'O' {
		return m, fmt.Errorf("decode pgoutput delete message: tuple kind %q, want 'K' or 'O'", m.oldKind)
	}
	m.old = readTuple(&r, scratch)
	return m, r.done()
}
