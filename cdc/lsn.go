package cdc

import (
	"fmt"
	"strconv"
	"strings"
)

// LSN is a position in the Postgres write-ahead log.
type LSN uint64

// String formats the LSN the way Postgres does: high and low 32 bits in
// upper-case hex, separated by a slash.
func (l LSN) String() string {
	var b [17]byte
	return string(l.Append(b[:0]))
}

// Append appends the LSN as String formats it to b.
func (l LSN) Append(b []byte) []byte {
	b = appendHex(b, uint32(l>>32))
	b = append(b, '/')
	return appendHex(b, uint32(l))
}

// appendHex appends v in upper-case hex without leading zeros.
func appendHex(b []byte, v uint32) []byte {
	const digits = "0123456789ABCDEF"
	var d [8]byte
	i := len(d)
	for {
		i--
		d[i] = digits[v&0xF]
		v >>= 4
		if v == 0 {
			break
		}
	}
	return append(b, d[i:]...)
}

// ParseLSN parses the "X/X" form Postgres prints.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("parse lsn %q: missing '/'", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parse lsn %q: %w", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parse lsn %q: %w", s, err)
	}
	return LSN(h<<32 | l), nil
}

// Position orders WAL events. Several changes share one WAL LSN and change
// LSNs are not monotonic across transactions, so an event is placed by the
// commit LSN of its transaction and its index within that transaction.
type Position struct {
	CommitLSN LSN
	Index     uint32
}

// String is the event id: "<commit_lsn>/<index>".
func (p Position) String() string {
	var b [38]byte
	s := append(p.CommitLSN.Append(b[:0]), '/')
	return string(strconv.AppendUint(s, uint64(p.Index), 10))
}

// Less reports whether p comes before q in commit order.
func (p Position) Less(q Position) bool {
	if p.CommitLSN != q.CommitLSN {
		return p.CommitLSN < q.CommitLSN
	}
	return p.Index < q.Index
}
