package backfill

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cdcd-dev/cdcd/cdc"
)

// Merger merges chunks read from tables into the capture stream by the
// watermark method (Netflix's DBLog): a chunk's rows are read between a
// low and a high watermark written into the WAL; every key the stream
// changes between the two is dropped from the chunk, since the stream
// carries that change (newer than the read, or as new); at the high
// watermark the rows left are emitted, in the stream, as op r events. A
// row emitted at the high watermark precedes every later change of its
// key, so a snapshot row never overwrites a newer change.
//
// That needs the read to see every transaction the stream passed before
// the low watermark. Postgres writes a transaction's commit record before
// the transaction becomes visible to new snapshots: microseconds
// normally, the standby's answer with synchronous replication. A
// transaction the stream passed before the low watermark may so be
// invisible to the chunk's snapshot, which then holds its keys' old rows,
// that nothing removes. So the Merger remembers the transaction ids of
// the changes it saw (the last xidHistory of them), the reader hands each
// chunk's snapshot over with its rows, and a chunk whose snapshot does not
// see a transaction streamed before its low watermark drops that
// transaction's keys (the stream carried its changes): while a backfill
// runs (Begin), the Merger keeps the keys of the transactions streamed,
// up to keyHistory of them. When they are not all known (the transaction
// began streaming before the backfill, changed a row without a key, or
// too many keys), the chunk emits nothing at its high watermark and is
// marked stale: it is read again. A transaction streamed after the low
// watermark needs no such care: the window removes its keys.
//
// An update that leaves a TOASTed column unchanged does not carry it: a
// row dropped for such changes only (in the window, or missed) is emitted
// with its key and the columns they all left out, as read (no change
// touched them), the others named Unchanged, so that a sink that had no
// row of the key gets them.
//
// The capture stream drives it (it is the reader's pgwal.Snapshots);
// chunk readers Open, Fill and Wait for chunks from other goroutines.
type Merger struct {
	mu     sync.Mutex
	open   atomic.Int32
	chunks map[string]*chunk

	// The transactions seen, owned by the stream's goroutine (Change and
	// Watermark): the sequence number each was seen at, in a ring.
	seq     uint64
	lastXid uint32
	seen    map[uint32]uint64
	ring    []sighting
	next    int

	// The keys of the last transactions streamed while a backfill runs
	// (Begin), up to keyHistory keys, owned by the stream's goroutine.
	running  atomic.Int32
	patched  atomic.Uint64
	held     atomic.Uint64 // high watermarks the stream waited at (Gate)
	keyed    map[uint32]*txnKeys
	keyLog   []*txnKeys // in stream order
	keyCount int
	cur      *txnKeys // the transaction Change last saw
}

// txnKeys are the keys one transaction changed, as the stream saw them;
// with whole false, some are not kept (too many, a change without a key, or
// seen before key history began).
type txnKeys struct {
	xid   uint32
	keys  []tableKey
	whole bool
}

// tableKey is one key a transaction changed, and the columns the change
// left out (an update of the key in place: unchanged TOAST).
type tableKey struct {
	schema, table, key string
	leftOut            []string
}

// keyHistory bounds the keys the Merger keeps (about 100 bytes each); a
// transaction of more than keyHistory/4 keeps none.
const keyHistory = 1 << 16

// Begin tells the Merger a backfill runs until the returned function is
// called: meanwhile, it keeps the keys each transaction streamed changes,
// so that a chunk whose snapshot missed one drops them instead of being
// read again. The first change streamed while none runs forgets them.
func (m *Merger) Begin() (end func()) {
	m.running.Add(1)
	var once sync.Once
	return func() { once.Do(func() { m.running.Add(-1) }) }
}

// sawKeys records the keys e changed, for its transaction; first tells
// whether e is the transaction's first change.
func (m *Merger) sawKeys(e *cdc.Event, first bool) {
	t := m.cur
	if t == nil || t.xid != e.TxID || first {
		t = &txnKeys{xid: e.TxID, whole: first}
		if m.keyed == nil {
			m.keyed = make(map[uint32]*txnKeys)
		}
		m.keyed[e.TxID] = t
		m.keyLog = append(m.keyLog, t)
		m.cur = t
	}
	if !t.whole {
		return
	}
	if e.Key == nil {
		m.forget(t)
		return
	}
	k, old, left := changeOf(e)
	t.keys = append(t.keys, tableKey{e.Schema, e.Table, k, left})
	m.keyCount++
	if old != "" {
		t.keys = append(t.keys, tableKey{e.Schema, e.Table, old, nil})
		m.keyCount++
	}
	if len(t.keys) > keyHistory/4 {
		m.forget(t)
	}
	for (m.keyCount > keyHistory || len(m.keyLog) > xidHistory) && len(m.keyLog) > 0 {
		old := m.keyLog[0]
		m.keyLog[0] = nil
		m.keyLog = m.keyLog[1:]
		m.keyCount -= len(old.keys)
		if m.keyed[old.xid] == old {
			delete(m.keyed, old.xid)
		}
	}
}

// forget drops t's keys: t is no longer whole.
func (m *Merger) forget(t *txnKeys) {
	m.keyCount -= len(t.keys)
	t.keys, t.whole = nil, false
}

// sighting is a transaction the stream passed, and when.
type sighting struct {
	xid uint32
	seq uint64
}

// xidHistory is how many of the last transactions streamed the Merger
// remembers: a transaction that waited unseen by snapshots while this
// many others streamed is not detected.
const xidHistory = 1 << 16

// NewMerger returns a Merger with no open chunk.
func NewMerger() *Merger {
	return &Merger{chunks: make(map[string]*chunk), seen: make(map[uint32]uint64)}
}

// saw records that the stream passed a change of transaction xid.
func (m *Merger) saw(xid uint32) {
	if xid == 0 || xid == m.lastXid {
		return
	}
	m.lastXid = xid
	m.seq++
	if len(m.ring) < xidHistory {
		m.ring = append(m.ring, sighting{xid, m.seq})
	} else {
		// A transaction streamed again (after a reconnect) keeps its
		// later sighting.
		if old := m.ring[m.next]; m.seen[old.xid] == old.seq {
			delete(m.seen, old.xid)
		}
		m.ring[m.next] = sighting{xid, m.seq}
		m.next = (m.next + 1) % xidHistory
	}
	m.seen[xid] = m.seq
}

// missed reports whether snap does not see a transaction the stream
// passed at or before sequence number upTo whose keys are not known. The
// known keys of schema.table that such transactions changed are noted in
// changed (see noteChange): the stream carried those changes, a snapshot
// row of them is older.
// It also reports whether snap missed any transaction it could so make up for.
func (m *Merger) missed(snap *snapshot, upTo uint64, schema, table string, changed map[string][]string) (stale, patched bool) {
	for xid, at := range m.seen {
		if at > upTo || snap.sees(xid) {
			continue
		}
		t := m.keyed[xid]
		if t == nil || !t.whole {
			return true, patched
		}
		patched = true
		for _, k := range t.keys {
			if k.schema == schema && k.table == table {
				noteChange(changed, k.key, k.leftOut)
			}
		}
	}
	return false, patched
}

// Patched is how many chunks missed a transaction streamed before their
// low watermark and dropped its keys instead of being read again.
func (m *Merger) Patched() uint64 { return m.patched.Load() }

// chunk is one read of a table between its watermarks.
type chunk struct {
	id            string
	schema, table string
	pipelines     []string
	low           bool                // the low watermark passed
	lowSeq        uint64              // the Merger's seq at the low watermark
	snap          *snapshot           // the read's, set with rows
	stale         bool                // the read missed a transaction streamed before low
	changed       map[string][]string // keys the stream changed since low (see noteChange)
	rows          []cdc.Event         // the rows read, set before high is written
	emitted       int
	pending       atomic.Int64
	failed        atomic.Pointer[error]
	durable       chan struct{} // closed once the emitted rows are durable (or failed)
	emittedOnce   chan struct{} // closed at the high watermark
	replayed      chan struct{} // closed when the high watermark comes again (see Watermark)
	gate          chan struct{} // closed once the chunk may emit (see Gate)
	done          bool          // the high watermark passed
	merged        bool          // rows holds only what the high watermark emits (see merge)
	truncated     bool          // the stream truncated the table since low
}

// openChunk registers a chunk before its low watermark is written.
func (m *Merger) openChunk(id, schema, table string, pipelines []string) *chunk {
	c := &chunk{id: id, schema: schema, table: table, pipelines: pipelines,
		changed: make(map[string][]string), durable: make(chan struct{}), emittedOnce: make(chan struct{}),
		replayed: make(chan struct{}), gate: make(chan struct{})}
	m.mu.Lock()
	m.chunks[id] = c
	m.mu.Unlock()
	m.open.Add(1)
	return c
}

// fill hands the chunk's rows and the snapshot they were read in over;
// call it before writing the high watermark.
func (m *Merger) fill(c *chunk, rows []cdc.Event, snap *snapshot) {
	m.mu.Lock()
	c.rows, c.snap = rows, snap
	m.mu.Unlock()
}

// closeChunk forgets a chunk (done, or abandoned: its watermarks, if they
// come, are ignored). A stream waiting at its high watermark goes on.
func (m *Merger) closeChunk(c *chunk) {
	m.mu.Lock()
	if _, ok := m.chunks[c.id]; ok {
		delete(m.chunks, c.id)
		if !c.done {
			m.open.Add(-1)
		}
	}
	openGate(c)
	m.mu.Unlock()
}

// release lets the chunk's rows go downstream at its high watermark: the
// stream waits there until then (Gate).
func (m *Merger) release(c *chunk) {
	m.mu.Lock()
	openGate(c)
	m.mu.Unlock()
}

// openGate closes c's gate once; the caller holds the Merger's lock.
func openGate(c *chunk) {
	select {
	case <-c.gate:
	default:
		close(c.gate)
	}
}

// Gate returns, for a chunk's high watermark, a channel closed once the
// chunk may emit its rows (released, or closed), nil if it may now. The
// handler writes a chunk's high watermark while the chunk before is being
// delivered, and releases it only once that chunk is durable and its
// cursor saved: the stream holds the rows back meanwhile, so that a crash
// repeats one chunk at most, never the one delivered and the next.
func (m *Merger) Gate(content []byte) <-chan struct{} {
	kind, id, _ := strings.Cut(string(content), " ")
	if kind != "high" {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.chunks[id]
	if c == nil || c.done {
		return nil
	}
	select {
	case <-c.gate:
		return nil
	default:
		m.held.Add(1)
		// The stream is at the chunk's high watermark: it has noted every
		// change the rows must drop. Dropping them now, while it waits,
		// keeps the pass out of the chain from the release to the rows'
		// delivery.
		if c.low && !c.merged {
			m.merge(c)
		}
		return c.gate
	}
}

// Change notes a change the stream hands downstream.
func (m *Merger) Change(e *cdc.Event) {
	first := e.TxID != m.lastXid // a transaction's changes come together
	m.saw(e.TxID)
	if m.running.Load() > 0 {
		if e.TxID != 0 {
			m.sawKeys(e, first)
		}
	} else if m.keyLog != nil {
		// No backfill runs: what was kept may not be whole when the next
		// one begins (a transaction streaming meanwhile), and its xids
		// come again after wraparound.
		m.keyed, m.keyLog, m.keyCount, m.cur = nil, nil, 0, nil
	}
	truncate := e.Op == cdc.OpTruncate
	if m.open.Load() == 0 || (e.Key == nil && !truncate) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.chunks {
		if !c.low || c.done || c.schema != e.Schema || c.table != e.Table {
			continue
		}
		if truncate {
			c.truncated = true
			continue
		}
		k, old, left := changeOf(e)
		noteChange(c.changed, k, left)
		if old != "" {
			// A change of the key itself: the old key's row is gone too.
			noteChange(c.changed, old, nil)
		}
	}
}

// changeOf is the key change e made, its old key if e changed the key
// itself ("" if not), and the columns e left out if it updated the row in
// place (unchanged TOAST).
func changeOf(e *cdc.Event) (key, old string, leftOut []string) {
	key = keyString(e.Key)
	if e.Before != nil {
		if old = keyOf(e.Before, e.Key); old == key {
			old = ""
		}
	}
	if e.Op == cdc.OpUpdate && old == "" && len(e.Unchanged) > 0 {
		leftOut = e.Unchanged
	}
	return key, old, leftOut
}

// noteChange notes in changed a change of key k that left the columns
// leftOut out: changed[k] is then the columns every change of k noted left
// out, nil if any sent them all (or deleted, inserted or moved the row).
// A row read keeps those columns (see Watermark): none of the changes
// touched them, and the stream never sent them.
func noteChange(changed map[string][]string, k string, leftOut []string) {
	cols, seen := changed[k]
	switch {
	case !seen && len(leftOut) > 0:
		changed[k] = slices.Clone(leftOut)
	case !seen || cols == nil:
		changed[k] = nil
	default:
		cols = slices.DeleteFunc(cols, func(c string) bool { return !slices.Contains(leftOut, c) })
		if len(cols) == 0 {
			cols = nil
		}
		changed[k] = cols
	}
}

// leftOutRow is row e with only its key and the columns cols, the others
// named unchanged.
func leftOutRow(e cdc.Event, cols []string) cdc.Event {
	after := make(cdc.Row, 0, len(e.Key)+len(cols))
	var unchanged []string
	for _, f := range e.After {
		if _, key := e.Key.Get(f.Name); key || slices.Contains(cols, f.Name) {
			after = append(after, f)
		} else {
			unchanged = append(unchanged, f.Name)
		}
	}
	e.After, e.Unchanged = after, unchanged
	return e
}

// Watermark handles a cdcd.watermark message: "low <chunk>" or
// "high <chunk>". At a chunk's high watermark it appends the rows the
// stream did not change to out, none if the chunk is stale.
//
// The chunk stays known until it is closed (durable, or given up): its
// high watermark coming again means the stream resumed from before it,
// having perhaps dropped the rows emitted with it before the bus had them
// (the watermark's transaction is confirmed only once they are durable).
// The rows are gone from the chunk (handed to the stream), so it is marked
// replayed, for the handler to read it again.
func (m *Merger) Watermark(content []byte, ack cdc.Acker, out []cdc.Event) []cdc.Event {
	kind, id, _ := strings.Cut(string(content), " ")
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.chunks[id]
	if c == nil {
		return out // a chunk of another process or run, or one given up
	}
	if c.done {
		if kind == "high" {
			select {
			case <-c.replayed:
			default:
				close(c.replayed)
			}
		}
		return out
	}
	switch kind {
	case "low":
		c.low, c.lowSeq = true, m.seq
	case "high":
		if !c.low {
			return out
		}
		if !c.merged {
			m.merge(c)
		}
		n := len(out)
		if n == 0 {
			// Nothing before the rows in the batch: the rows' slice, the
			// chunk's no more, becomes it (a chunk is megabytes of events).
			// Without room past the rows: the stream's next events go to
			// an array of their own, so that the chunk's holds only its
			// rows, which the chunks after may reuse (see spare).
			out = c.rows[:len(c.rows):len(c.rows)]
		} else {
			out = append(out, c.rows...)
		}
		acker := &rowAck{txn: ack, c: c}
		for i := n; i < len(out); i++ {
			out[i].Ack = acker
		}
		c.emitted = len(out) - n
		c.rows = nil
		c.pending.Store(int64(c.emitted))
		c.done = true
		m.open.Add(-1)
		close(c.emittedOnce)
		if c.emitted == 0 {
			close(c.durable)
		}
	}
	return out
}

// merge drops from c's rows, in place, those of the keys the stream
// changed between c's watermarks (see noteChange), all of them if the
// stream truncated the table meanwhile, or all of them if c's read missed
// a transaction whose keys are not known (c is then stale).
// The stream has passed c's high watermark: no change is noted for c
// after it.
func (m *Merger) merge(c *chunk) {
	c.merged = true
	if c.snap == nil {
		c.stale, c.rows = true, nil
		return
	}
	if stale, patched := m.missed(c.snap, c.lowSeq, c.schema, c.table, c.changed); stale {
		c.stale, c.rows = true, nil
		return
	} else if patched {
		m.patched.Add(1)
	}
	if c.truncated {
		// Every row read is gone: older than the truncate the stream
		// carried, or inserted after it, which the stream carries too.
		clear(c.rows)
		c.rows = nil
		return
	}
	if len(c.changed) == 0 {
		return
	}
	kept := c.rows[:0]
	var key []byte
	for i := range c.rows {
		key = appendKey(key[:0], c.rows[i].Key)
		if cols, changed := c.changed[string(key)]; changed {
			// The stream carried the row as new or newer; but for the
			// columns each of its changes left out, which it never sent:
			// they are as read.
			if len(cols) > 0 {
				kept = append(kept, leftOutRow(c.rows[i], cols))
			}
			continue
		}
		kept = append(kept, c.rows[i]) // in place until a row is dropped
	}
	clear(c.rows[len(kept):])
	c.rows = kept
}

// rowAck settles each row a chunk emitted in the watermark's transaction
// and in the chunk: the rows share one.
type rowAck struct {
	txn cdc.Acker
	c   *chunk
}

func (a *rowAck) Ack(err error) {
	if err != nil {
		failed := err // only a failure's address is taken: no allocation a row
		a.c.failed.CompareAndSwap(nil, &failed)
	}
	a.txn.Ack(err)
	if a.c.pending.Add(-1) == 0 {
		close(a.c.durable)
	}
}

// keyString is a key's identity: its JSON values, which the stream and the
// chunk reader encode alike.
func keyString(k cdc.Row) string { return string(appendKey(nil, k)) }

func appendKey(dst []byte, k cdc.Row) []byte {
	for i := range k {
		dst = append(dst, k[i].Value...)
		dst = append(dst, 0)
	}
	return dst
}

// keyOf is the key's columns as they are in row, "" if row lacks one.
func keyOf(row, key cdc.Row) string {
	var b bytes.Buffer
	for i := range key {
		v, ok := row.Get(key[i].Name)
		if !ok {
			return ""
		}
		b.Write(v)
		b.WriteByte(0)
	}
	return b.String()
}
