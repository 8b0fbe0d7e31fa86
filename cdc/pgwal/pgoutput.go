package pgwal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/cdcd-dev/cdcd/cdc"
)

// The pgoutput messages that carry no row data are decoded by pglogrepl.
// Its decoders trust their input: a truncated message makes them index past
// its end, a count is allocated before it is checked against the bytes
// left, and trailing bytes go unnoticed. The replication stream is the
// server's, but a decoder of outside bytes must not crash the daemon or
// allocate gigabytes on one bad message, so each parser here first checks
// what bounds every index and allocation, lets pglogrepl decode, and then
// checks that the decoded fields account for every byte. decode's recover
// is the last line behind those checks, not the first.

type beginMsg struct {
	finalLSN   cdc.LSN
	commitTime time.Time
	xid        uint32
}

// Begin: final LSN (8), commit time (8), xid (4).
func parseBegin(b []byte) (beginMsg, error) {
	var m pglogrepl.BeginMessage
	if err := decodeFixed("begin", b, 1+8+8+4, m.Decode); err != nil {
		return beginMsg{}, err
	}
	return beginMsg{finalLSN: cdc.LSN(m.FinalLSN), commitTime: m.CommitTime.UTC(), xid: m.Xid}, nil
}

type commitMsg struct {
	flags             uint8
	commitLSN, endLSN cdc.LSN
	commitTime        time.Time
}

// Commit: flags (1), commit LSN (8), end LSN (8), commit time (8).
func parseCommit(b []byte) (commitMsg, error) {
	var m pglogrepl.CommitMessage
	if err := decodeFixed("commit", b, 1+1+8+8+8, m.Decode); err != nil {
		return commitMsg{}, err
	}
	return commitMsg{flags: m.Flags, commitLSN: cdc.LSN(m.CommitLSN), endLSN: cdc.LSN(m.TransactionEndLSN), commitTime: m.CommitTime.UTC()}, nil
}

type originMsg struct {
	lsn  cdc.LSN
	name string
}

// Origin: origin LSN (8), name (C string).
func parseOrigin(b []byte) (originMsg, error) {
	var m pglogrepl.OriginMessage
	if err := decode("origin", b, &m); err != nil {
		return originMsg{}, err
	}
	return originMsg{lsn: cdc.LSN(m.CommitLSN), name: m.Name}, exact("origin", b, 1+8+len(m.Name)+1)
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

// Relation: oid (4), namespace and name (C strings), replica identity (1),
// column count (2), then per column flags (1), name (C string), type oid
// (4) and typmod (4).
func parseRelation(b []byte) (relationMsg, error) {
	var m pglogrepl.RelationMessage
	// Each column takes at least 10 bytes: a count the payload cannot hold
	// is refused before pglogrepl allocates for it.
	if n := relationColumnCount(b); n < 0 || n*10 > len(b) {
		return relationMsg{}, fmt.Errorf("decode pgoutput relation message: truncated or malformed column count in %d bytes", len(b))
	}
	if err := decode("relation", b, &m); err != nil {
		return relationMsg{}, err
	}
	r := relationMsg{oid: m.RelationID, namespace: m.Namespace, name: m.RelationName, identity: m.ReplicaIdentity,
		cols: make([]relationColumn, len(m.Columns))}
	size := 1 + 4 + len(m.Namespace) + 1 + len(m.RelationName) + 1 + 1 + 2
	for i, c := range m.Columns {
		r.cols[i] = relationColumn{flags: c.Flags, name: c.Name, typeOID: c.DataType, typmod: c.TypeModifier}
		size += 1 + len(c.Name) + 1 + 4 + 4
	}
	return r, exact("relation", b, size)
}

// relationColumnCount reads a Relation message's column count without
// decoding it, or returns -1 if the message cannot hold one.
func relationColumnCount(b []byte) int {
	off := 5
	for range 2 { // namespace, relation name
		if off > len(b) {
			return -1
		}
		i := bytes.IndexByte(b[off:], 0)
		if i < 0 {
			return -1
		}
		off += i + 1
	}
	off++ // replica identity
	if off+2 > len(b) {
		return -1
	}
	return int(binary.BigEndian.Uint16(b[off:]))
}

type typeMsg struct {
	oid             uint32
	namespace, name string
}

// Type: oid (4), namespace and name (C strings).
func parseType(b []byte) (typeMsg, error) {
	var m pglogrepl.TypeMessage
	if err := decode("type", b, &m); err != nil {
		return typeMsg{}, err
	}
	return typeMsg{oid: m.DataType, namespace: m.Namespace, name: m.Name}, exact("type", b, 1+4+len(m.Namespace)+1+len(m.Name)+1)
}

type truncateMsg struct {
	options uint8 // 1 CASCADE, 2 RESTART IDENTITY
	rels    []uint32
}

// Truncate: relation count (4), options (1), relation oids (4 each).
func parseTruncate(b []byte) (truncateMsg, error) {
	if len(b) < 6 {
		return truncateMsg{}, exact("truncate", b, 6)
	}
	// pglogrepl allocates the relations before reading them: the count
	// must match the bytes first.
	if err := exact("truncate", b, 6+4*int(binary.BigEndian.Uint32(b[1:]))); err != nil {
		return truncateMsg{}, err
	}
	var m pglogrepl.TruncateMessage
	if err := decode("truncate", b, &m); err != nil {
		return truncateMsg{}, err
	}
	return truncateMsg{options: m.Option, rels: m.RelationIDs}, nil
}

type logicalMsg struct {
	transactional bool
	lsn           cdc.LSN
	prefix        string
	content       []byte // aliases the input
}

// Message: flags (1), LSN (8), prefix (C string), content length (4),
// content.
func parseLogicalMessage(b []byte) (logicalMsg, error) {
	// pglogrepl reads the prefix without checking it ends and slices the
	// content by its length unchecked: check both first.
	const head = 1 + 1 + 8
	i := -1
	if len(b) > head {
		i = bytes.IndexByte(b[head:], 0)
	}
	if i < 0 || len(b) < head+i+1+4 {
		return logicalMsg{}, fmt.Errorf("decode pgoutput logical decoding message: truncated or malformed prefix or content length in %d bytes", len(b))
	}
	n := binary.BigEndian.Uint32(b[head+i+1:])
	if err := exact("logical decoding", b, head+i+1+4+int(int32(n))); err != nil {
		return logicalMsg{}, err
	}
	var m pglogrepl.LogicalDecodingMessage
	if err := decode("logical decoding", b, &m); err != nil {
		return logicalMsg{}, err
	}
	return logicalMsg{transactional: b[1]&1 != 0, lsn: cdc.LSN(m.LSN), prefix: m.Prefix, content: m.Content}, nil
}

// decodeFixed decodes a message of a fixed size: once its size is checked,
// pglogrepl's decoder stays in bounds. It takes the decoder's method, not
// the message as an interface, so the message stays on the stack: Begin
// and Commit come with every transaction (BenchmarkDecodeTxn).
func decodeFixed(kind string, b []byte, size int, decode func([]byte) error) error {
	if err := exact(kind, b, size); err != nil {
		return err
	}
	if err := decode(b[1:]); err != nil {
		return fmt.Errorf("decode pgoutput %s message: %w", kind, err)
	}
	return nil
}

// decode runs pglogrepl's decoder on b's body, turning an index past the
// end into an error.
func decode(kind string, b []byte, m pglogrepl.MessageDecoder) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("decode pgoutput %s message: truncated or malformed in %d bytes", kind, len(b))
		}
	}()
	if err := m.Decode(b[1:]); err != nil {
		return fmt.Errorf("decode pgoutput %s message: %w", kind, err)
	}
	return nil
}

// exact reports a message that is not size bytes long: every pgoutput v1
// message has an exact layout.
func exact(kind string, b []byte, size int) error {
	switch {
	case size < 0 || len(b) < size:
		return fmt.Errorf("decode pgoutput %s message: truncated: %d bytes, want %d", kind, len(b), size)
	case len(b) > size:
		return fmt.Errorf("decode pgoutput %s message: %d unexpected trailing bytes", kind, len(b)-size)
	}
	return nil
}
