package pgwal

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

// pgoutput v1 message types: the first byte of an XLogData payload.
const (
	msgBegin    = 'B'
	msgCommit   = 'C'
	msgOrigin   = 'O'
	msgRelation = 'R'
	msgType     = 'Y'
	msgInsert   = 'I'
	msgUpdate   = 'U'
	msgDelete   = 'D'
	msgTruncate = 'T'
	msgMessage  = 'M'
)

// pgEpochMicros is 2000-01-01 00:00:00 UTC, the Postgres epoch, in Unix
// microseconds.
const pgEpochMicros = 946684800 * 1_000_000

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

func (r *wireReader) uint64(what string) uint64 {
	p := r.take(8, what)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

func (r *wireReader) lsn(what string) cdc.LSN { return cdc.LSN(r.uint64(what)) }

func (r *wireReader) time(what string) time.Time {
	us := int64(r.uint64(what))
	return time.UnixMicro(us + pgEpochMicros).UTC()
}

// cstring reads a NUL-terminated string, aliasing the input.
func (r *wireReader) cstring(what string) []byte {
	if r.err != nil {
		return nil
	}
	rest := r.b[r.off:]
	for i, c := range rest {
		if c == 0 {
			r.off += i + 1
			return rest[:i:i]
		}
	}
	r.fail(what)
	return nil
}

// done reports the first error, or an error if bytes are left over: every
// pgoutput v1 message has an exact layout.
func (r *wireReader) done() error {
	if r.err == nil && r.off != len(r.b) {
		r.err = fmt.Errorf("decode pgoutput %s message: %d unexpected trailing bytes", r.msg, len(r.b)-r.off)
	}
	return r.err
}

type beginMsg struct {
	finalLSN   cdc.LSN
	commitTime time.Time
	xid        uint32
}

func parseBegin(b []byte) (beginMsg, error) {
	r := wireReader{msg: "begin", b: b, off: 1}
	m := beginMsg{finalLSN: r.lsn("final lsn"), commitTime: r.time("commit time"), xid: r.uint32("xid")}
	return m, r.done()
}

type commitMsg struct {
	flags             uint8
	commitLSN, endLSN cdc.LSN
	commitTime        time.Time
}

func parseCommit(b []byte) (commitMsg, error) {
	r := wireReader{msg: "commit", b: b, off: 1}
	m := commitMsg{flags: r.uint8("flags"), commitLSN: r.lsn("commit lsn"), endLSN: r.lsn("end lsn"), commitTime: r.time("commit time")}
	return m, r.done()
}

type originMsg struct {
	lsn  cdc.LSN
	name []byte // aliases the input
}

func parseOrigin(b []byte) (originMsg, error) {
	r := wireReader{msg: "origin", b: b, off: 1}
	m := originMsg{lsn: r.lsn("origin lsn"), name: r.cstring("origin name")}
	return m, r.done()
}

type relationMsg struct {
	oid             uint32
	namespace, name string
	identity        byte // 'd' default, 'n' nothing, 'f' full, 'i' index
	cols            []relationColumn
}

type relationColumn struct {
	flags   uint8 // 1: part of the replica identity
	name    string
	typeOID uint32
	typmod  int32
}

func parseRelation(b []byte) (relationMsg, error) {
	r := wireReader{msg: "relation", b: b, off: 1}
	m := relationMsg{
		oid:       r.uint32("relation oid"),
		namespace: string(r.cstring("namespace")),
		name:      string(r.cstring("relation name")),
		identity:  r.uint8("replica identity"),
	}
	n := int(r.uint16("column count"))
	// Each column takes at least 10 bytes; a count the payload cannot hold
	// is rejected before allocating for it.
	if r.err == nil && n*10 > len(b)-r.off {
		r.fail("column count")
	}
	if r.err == nil {
		m.cols = make([]relationColumn, n)
	}
	for i := 0; i < n && r.err == nil; i++ {
		m.cols[i] = relationColumn{
			flags:   r.uint8("column flags"),
			name:    string(r.cstring("column name")),
			typeOID: r.uint32("column type"),
			typmod:  int32(r.uint32("column typmod")),
		}
	}
	return m, r.done()
}

type typeMsg struct {
	oid             uint32
	namespace, name string
}

func parseType(b []byte) (typeMsg, error) {
	r := wireReader{msg: "type", b: b, off: 1}
	m := typeMsg{oid: r.uint32("type oid"), namespace: string(r.cstring("namespace")), name: string(r.cstring("type name"))}
	return m, r.done()
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

type truncateMsg struct {
	options uint8 // 1 CASCADE, 2 RESTART IDENTITY
	rels    []uint32
}

func parseTruncate(b []byte) (truncateMsg, error) {
	r := wireReader{msg: "truncate", b: b, off: 1}
	n := r.uint32("relation count")
	m := truncateMsg{options: r.uint8("options")}
	if r.err == nil && uint64(n)*4 > uint64(len(b)-r.off) {
		r.fail("relation count")
	}
	if r.err == nil {
		m.rels = make([]uint32, n)
		for i := range m.rels {
			m.rels[i] = r.uint32("relation oid")
		}
	}
	return m, r.done()
}

type logicalMsg struct {
	transactional bool
	lsn           cdc.LSN
	prefix        []byte // aliases the input
	content       []byte // aliases the input
}

func parseLogicalMessage(b []byte) (logicalMsg, error) {
	r := wireReader{msg: "logical decoding", b: b, off: 1}
	m := logicalMsg{transactional: r.uint8("flags")&1 != 0, lsn: r.lsn("lsn"), prefix: r.cstring("prefix")}
	n := r.uint32("content length")
	m.content = r.take(int(int32(n)), "content")
	return m, r.done()
}
