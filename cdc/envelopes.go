package cdc

import (
	"strconv"
	"time"
)

// Envelopes appends envelopes as AppendEnvelope does, byte for byte, for
// a writer that encodes many events one after the other: it keeps the
// parts that repeat from one event to the next (a row's column names, the
// source block's constant parts, ts_ms) instead of encoding them again.
// The zero value is ready; an Envelopes is not safe for concurrent use.
type Envelopes struct {
	before, after rowNames

	head     headKey
	headText []byte // appendSourceHead's output for head
	table    tableKey
	tblText  []byte // appendSourceTable's output for table

	nowMS   int64
	nowText []byte // `","ts_ms":<nowMS>`

	commit     time.Time
	commitText []byte // ts_ms's value for commit
	txn        txnKey
	txnText    []byte // `,"txId":<xid>,"lsn":<lsn>,"index":` for txn
}

type txnKey struct {
	xid uint32
	lsn LSN
}

type headKey struct {
	src    SourceInfo
	source string
	ok     bool
}

type tableKey struct {
	db, schema, table string
	snapshot, ok      bool
}

// Append appends the envelope of e to dst, as AppendEnvelope.
func (n *Envelopes) Append(dst []byte, e *Event, src *SourceInfo, now time.Time) []byte {
	dst = append(dst, `{"before":`...)
	dst = n.before.append(dst, e.Before)
	dst = append(dst, `,"after":`...)
	dst = n.after.append(dst, e.After)
	if e.After != nil && len(e.Unchanged) > 0 {
		dst = appendUnavailable(dst[:len(dst)-1], len(e.After) > 0, e.Unchanged)
	}
	source := e.Source
	if source == SourcePostgres {
		source = ""
	}
	if hk := (headKey{*src, source, true}); hk != n.head {
		n.head, n.headText = hk, appendSourceHead(n.headText[:0], src, source)
	}
	dst = append(dst, n.headText...)
	if !e.CommitTime.Equal(n.commit) || n.commitText == nil {
		n.commit = e.CommitTime
		n.commitText = strconv.AppendInt(n.commitText[:0], e.CommitTime.UnixMilli(), 10)
	}
	dst = append(dst, n.commitText...)
	if tk := (tableKey{src.DB, e.Schema, e.Table, e.Op == OpRead, true}); tk != n.table {
		n.table, n.tblText = tk, appendSourceTable(n.tblText[:0], src, tk.snapshot, e.Schema, e.Table)
	}
	dst = append(dst, n.tblText...)
	if e.Pos.CommitLSN != 0 {
		// A transaction's events, a chunk's rows: one xid and LSN.
		if tk := (txnKey{e.TxID, e.Pos.CommitLSN}); tk != n.txn || n.txnText == nil {
			n.txn, n.txnText = tk, appendTxn(n.txnText[:0], e)
		}
		dst = append(dst, n.txnText...)
		dst = strconv.AppendUint(dst, uint64(e.Pos.Index), 10)
	}
	dst = appendOrigin(dst, e)
	if ms := now.UnixMilli(); ms != n.nowMS || n.nowText == nil {
		n.nowMS = ms
		n.nowText = strconv.AppendInt(append(n.nowText[:0], `","ts_ms":`...), ms, 10)
	}
	dst = append(dst, n.nowText...)
	return appendTail(dst, e)
}

// rowNames is the encoded column names of the last row appended: rows of
// one table, one event after the other, have the same.
type rowNames struct {
	names []string
	text  []byte // `"name":` for each, the ones after the first with a leading comma
	ends  []int  // where each name's text ends
}

// append appends r as appendRow does.
func (c *rowNames) append(dst []byte, r Row) []byte {
	if r == nil {
		return append(dst, "null"...)
	}
	if !c.matches(r) {
		c.set(r)
	}
	dst = append(dst, '{')
	start := 0
	for i := range r {
		end := c.ends[i]
		dst = append(dst, c.text[start:end]...)
		start = end
		if len(r[i].Value) == 0 {
			dst = append(dst, "null"...)
		} else {
			dst = append(dst, r[i].Value...)
		}
	}
	return append(dst, '}')
}

func (c *rowNames) matches(r Row) bool {
	if len(r) != len(c.names) {
		return false
	}
	for i := range r {
		if r[i].Name != c.names[i] {
			return false
		}
	}
	return true
}

func (c *rowNames) set(r Row) {
	c.names, c.text, c.ends = c.names[:0], c.text[:0], c.ends[:0]
	for i := range r {
		if i > 0 {
			c.text = append(c.text, ',')
		}
		c.text = AppendJSONString(c.text, r[i].Name)
		c.text = append(c.text, ':')
		c.names = append(c.names, r[i].Name)
		c.ends = append(c.ends, len(c.text))
	}
}
