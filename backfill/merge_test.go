package backfill

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/cdc"
)

type countAck struct{ n int }

func (a *countAck) Ack(error) { a.n++ }

// At its high watermark a chunk emits the rows whose keys the stream did
// not change since its low watermark, in key order, after the events
// already in the batch, whether or not the batch is empty.
func TestWatermarkEmitsTheRowsNotChanged(t *testing.T) {
	key := func(id int) cdc.Row {
		return cdc.Row{{Name: "id", Value: json.RawMessage(strconv.Itoa(id))}}
	}
	for _, before := range []int{0, 2} {
		m := NewMerger()
		c := m.openChunk("1.a.1", "public", "items", []string{"p"})
		var rows []cdc.Event
		for id := 1; id <= 6; id++ {
			rows = append(rows, cdc.Event{Op: cdc.OpRead, Schema: "public", Table: "items", Key: key(id), After: key(id)})
		}
		m.Watermark([]byte("low 1.a.1"), &countAck{}, nil)
		m.fill(c, rows, &snapshot{xmax: 100, xip: map[uint32]struct{}{}})
		for _, id := range []int{2, 5} {
			e := cdc.Event{Op: cdc.OpUpdate, Schema: "public", Table: "items", TxID: 50, Key: key(id), After: key(id)}
			m.Change(&e)
		}
		other := cdc.Event{Op: cdc.OpUpdate, Schema: "public", Table: "other", TxID: 50, Key: key(3), After: key(3)}
		m.Change(&other)
		var out []cdc.Event
		for i := range before {
			out = append(out, cdc.Event{Op: cdc.OpUpdate, Schema: "public", Table: "x", Key: key(100 + i)})
		}
		txn := &countAck{}
		out = m.Watermark([]byte("high 1.a.1"), txn, out)
		var got []string
		for _, e := range out[before:] {
			got = append(got, string(e.Key[0].Value))
			if e.Ack == nil {
				t.Fatalf("batch of %d before: row %s has no acker", before, e.Key[0].Value)
			}
		}
		if want := []string{"1", "3", "4", "6"}; !slices.Equal(got, want) || len(out) != before+len(want) {
			t.Fatalf("batch of %d before: emitted %v (batch %d), want %v", before, got, len(out), want)
		}
		for i := range before {
			if string(out[i].Key[0].Value) != strconv.Itoa(100+i) {
				t.Fatalf("batch of %d before: event %d is %s", before, i, out[i].Key[0].Value)
			}
		}
		for _, e := range out[before:] {
			e.Ack.Ack(nil)
		}
		select {
		case <-c.durable:
		default:
			t.Fatalf("batch of %d before: the chunk is not durable once its rows are acknowledged", before)
		}
		if txn.n != 4 {
			t.Fatalf("batch of %d before: the watermark's transaction got %d acks, want 4", before, txn.n)
		}
	}
}

// A chunk whose snapshot missed a transaction streamed before its low
// watermark drops the transaction's keys of its table when all are known,
// and is read again otherwise: the transaction began before the backfill
// did (Begin), or changed more keys than are kept.
func TestMissedTransactionKeys(t *testing.T) {
	key := func(id int) cdc.Row {
		return cdc.Row{{Name: "id", Value: json.RawMessage(strconv.Itoa(id))}}
	}
	change := func(m *Merger, xid uint32, table string, ids ...int) {
		for _, id := range ids {
			e := cdc.Event{Op: cdc.OpUpdate, Schema: "public", Table: table, TxID: xid, Key: key(id), After: key(id)}
			m.Change(&e)
		}
	}
	hides := func(xids ...uint32) *snapshot { // sees all before 1000 but xids
		s := &snapshot{xmax: 1000, xip: map[uint32]struct{}{}}
		for _, x := range xids {
			s.xip[x] = struct{}{}
		}
		return s
	}
	many := make([]int, keyHistory/4+1)
	for i := range many {
		many[i] = 1000 + i
	}
	for _, c := range []struct {
		name    string
		stream  func(m *Merger)
		hidden  []uint32
		stale   bool
		dropped []string
	}{
		{"visible", func(m *Merger) { change(m, 10, "items", 1, 2) }, nil, false, nil},
		{"known keys", func(m *Merger) {
			change(m, 10, "items", 1, 2)
			change(m, 11, "other", 3)
			change(m, 12, "items", 4)
		}, []uint32{10, 11}, false, []string{"1", "2"}},
		{"begun before Begin", func(m *Merger) {
			change(m, 10, "items", 1)
			end := m.Begin()
			change(m, 10, "items", 2)
			end()
		}, []uint32{10}, true, nil},
		{"too many keys", func(m *Merger) { change(m, 10, "items", many...) }, []uint32{10}, true, nil},
	} {
		m := NewMerger()
		var end func()
		if c.name != "begun before Begin" {
			end = m.Begin()
		}
		c.stream(m)
		changed := map[string][]string{}
		stale, _ := m.missed(hides(c.hidden...), m.seq, "public", "items", changed)
		if stale != c.stale {
			t.Errorf("%s: stale %v, want %v", c.name, stale, c.stale)
		}
		if !c.stale {
			var got []string
			for k := range changed {
				got = append(got, strings.TrimSuffix(k, "\x00"))
			}
			slices.Sort(got)
			if !slices.Equal(got, c.dropped) {
				t.Errorf("%s: dropped %v, want %v", c.name, got, c.dropped)
			}
		}
		if end != nil {
			end()
		}
	}
}

// The keys kept are those of transactions streamed while a backfill ran
// all along: one that streamed in part between two backfills, or an xid
// streamed again (wrapped around) after the backfill that kept its keys
// ended, has keys the Merger does not know, so a chunk that misses it is
// read again rather than trusting keys of another transaction or a part.
func TestKeyHistorySpansOneBackfill(t *testing.T) {
	key := func(id int) cdc.Row {
		return cdc.Row{{Name: "id", Value: json.RawMessage(strconv.Itoa(id))}}
	}
	change := func(m *Merger, xid uint32, ids ...int) {
		for _, id := range ids {
			e := cdc.Event{Op: cdc.OpUpdate, Schema: "public", Table: "items", TxID: xid, Key: key(id), After: key(id)}
			m.Change(&e)
		}
	}
	hides := &snapshot{xmax: 1000, xip: map[uint32]struct{}{10: {}}}
	for _, c := range []struct {
		name   string
		stream func(m *Merger)
	}{
		{"a transaction streamed across two backfills", func(m *Merger) {
			end := m.Begin()
			change(m, 10, 1)
			end()
			change(m, 10, 2) // no backfill runs: not kept
			m.Begin()
			change(m, 10, 3)
		}},
		{"an xid streamed again after its backfill ended", func(m *Merger) {
			end := m.Begin()
			change(m, 10, 1)
			end()
			change(m, 11, 5)
			change(m, 10, 2) // 2^32 transactions later
			m.Begin()
			change(m, 12, 6)
		}},
	} {
		m := NewMerger()
		c.stream(m)
		changed := map[string][]string{}
		if stale, _ := m.missed(hides, m.seq, "public", "items", changed); !stale {
			t.Errorf("%s: a chunk missing xid 10 drops keys %v, not read again: key 2's row read overwrites its change", c.name, changed)
		}
	}
}

// A row the stream updated between a chunk's watermarks leaving a TOASTed
// column out (unchanged, not sent) is not dropped whole: the sink may
// hold no row of the key but the stream's update, without that column.
// At the high watermark the chunk emits, after the update, the columns
// every change in the window left out, as read (the same values: none of
// those changes touched them), naming the others unchanged. A key a change
// sent the column for, deleted or moved is dropped as before. A change
// the snapshot missed (streamed before the low watermark, not yet
// visible) counts as one of the window's.
func TestWatermarkKeepsColumnsTheStreamLeftOut(t *testing.T) {
	val := func(s string) json.RawMessage { return json.RawMessage(s) }
	key := func(id int) cdc.Row { return cdc.Row{{Name: "id", Value: val(strconv.Itoa(id))}} }
	row := func(id int) cdc.Row {
		return cdc.Row{{Name: "id", Value: val(strconv.Itoa(id))}, {Name: "v", Value: val("0")}, {Name: "big", Value: val(`"big` + strconv.Itoa(id) + `"`)}}
	}
	m := NewMerger()
	end := m.Begin()
	defer end()
	c := m.openChunk("1.a.1", "public", "items", []string{"p"})
	var rows []cdc.Event
	for id := 1; id <= 8; id++ {
		rows = append(rows, cdc.Event{Op: cdc.OpRead, Schema: "public", Table: "items", Key: key(id), After: row(id)})
	}
	change := func(xid uint32, op cdc.Op, id int, unchanged bool, before cdc.Row) {
		e := cdc.Event{Op: op, Schema: "public", Table: "items", TxID: xid, Key: key(id), Before: before}
		if op != cdc.OpDelete {
			e.After = row(id)
			if unchanged {
				e.After, e.Unchanged = e.After[:2], []string{"big"}
			}
		}
		m.Change(&e)
	}
	// Streamed before the low watermark, missed by the snapshot.
	change(40, cdc.OpUpdate, 7, true, nil)  // big left out: kept
	change(41, cdc.OpUpdate, 8, false, nil) // sent: dropped
	m.Watermark([]byte("low 1.a.1"), &countAck{}, nil)
	m.fill(c, rows, &snapshot{xmax: 100, xip: map[uint32]struct{}{40: {}, 41: {}}})
	change(50, cdc.OpUpdate, 2, true, nil)     // big left out: kept
	change(51, cdc.OpUpdate, 2, true, nil)     // again: still kept
	change(52, cdc.OpUpdate, 3, true, nil)     // big left out,
	change(53, cdc.OpUpdate, 3, false, nil)    // then sent: dropped
	change(54, cdc.OpUpdate, 4, true, nil)     // big left out,
	change(55, cdc.OpDelete, 4, false, nil)    // then deleted: dropped
	change(56, cdc.OpUpdate, 5, false, nil)    // sent: dropped
	change(57, cdc.OpUpdate, 16, true, key(6)) // moved from 6: dropped
	out := m.Watermark([]byte("high 1.a.1"), &countAck{}, nil)
	var got []string
	for _, e := range out {
		b, _ := json.Marshal(e.After)
		got = append(got, string(e.Op)+" "+string(b)+" unchanged "+strings.Join(e.Unchanged, ","))
	}
	want := []string{
		`r [{"Name":"id","Value":1},{"Name":"v","Value":0},{"Name":"big","Value":"big1"}] unchanged `,
		`r [{"Name":"id","Value":2},{"Name":"big","Value":"big2"}] unchanged v`,
		`r [{"Name":"id","Value":7},{"Name":"big","Value":"big7"}] unchanged v`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("emitted\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A chunk held at its high watermark (Gate) drops the keys the stream
// changed while the stream waits, not after its release: the pass over the
// rows is out of the chain from one chunk's delivery to the next's. The
// rows it emits once released are the same.
func TestGateDropsChangedKeysWhileHeld(t *testing.T) {
	key := func(id int) cdc.Row {
		return cdc.Row{{Name: "id", Value: json.RawMessage(strconv.Itoa(id))}}
	}
	m := NewMerger()
	c := m.openChunk("1.a.1", "public", "items", []string{"p"})
	var rows []cdc.Event
	for id := 1; id <= 6; id++ {
		rows = append(rows, cdc.Event{Op: cdc.OpRead, Schema: "public", Table: "items", Key: key(id), After: key(id)})
	}
	m.Watermark([]byte("low 1.a.1"), &countAck{}, nil)
	m.fill(c, rows, &snapshot{xmax: 100, xip: map[uint32]struct{}{}})
	for _, id := range []int{2, 5} {
		e := cdc.Event{Op: cdc.OpUpdate, Schema: "public", Table: "items", TxID: 50, Key: key(id), After: key(id)}
		m.Change(&e)
	}
	gate := m.Gate([]byte("high 1.a.1"))
	if gate == nil {
		t.Fatal("a chunk not released is not held at its high watermark")
	}
	m.mu.Lock()
	held := len(c.rows)
	m.mu.Unlock()
	if held != 4 {
		t.Fatalf("held at its high watermark, the chunk has %d rows, want the 4 not changed", held)
	}
	m.release(c)
	<-gate
	out := m.Watermark([]byte("high 1.a.1"), &countAck{}, nil)
	var got []string
	for _, e := range out {
		got = append(got, string(e.Key[0].Value))
	}
	if want := []string{"1", "3", "4", "6"}; !slices.Equal(got, want) {
		t.Fatalf("emitted %v, want %v", got, want)
	}
}

// A truncate of the table between a chunk's watermarks removed every row
// the chunk read: its rows, older than the truncate the stream carried
// before them, are not emitted (a topic's consumer would hold them again
// after the truncate). Whether the stream reaches the high watermark
// held (Gate) or not.
func TestWatermarkDropsTheRowsOfATruncatedTable(t *testing.T) {
	key := func(id int) cdc.Row {
		return cdc.Row{{Name: "id", Value: json.RawMessage(strconv.Itoa(id))}}
	}
	for _, held := range []bool{false, true} {
		m := NewMerger()
		c := m.openChunk("1.a.1", "public", "items", []string{"p"})
		var rows []cdc.Event
		for id := 1; id <= 4; id++ {
			rows = append(rows, cdc.Event{Op: cdc.OpRead, Schema: "public", Table: "items", Key: key(id), After: key(id)})
		}
		m.Watermark([]byte("low 1.a.1"), &countAck{}, nil)
		m.fill(c, rows, &snapshot{xmax: 100, xip: map[uint32]struct{}{}})
		other := cdc.Event{Op: cdc.OpTruncate, Schema: "public", Table: "other", TxID: 50}
		m.Change(&other)
		trunc := cdc.Event{Op: cdc.OpTruncate, Schema: "public", Table: "items", TxID: 50}
		m.Change(&trunc)
		if held {
			gate := m.Gate([]byte("high 1.a.1"))
			if gate == nil {
				t.Fatal("a chunk not released is not held at its high watermark")
			}
			m.release(c)
			<-gate
		} else {
			m.release(c)
		}
		out := m.Watermark([]byte("high 1.a.1"), &countAck{}, nil)
		if len(out) != 0 {
			var got []string
			for _, e := range out {
				got = append(got, string(e.Key[0].Value))
			}
			t.Fatalf("held %v: emitted %v after the table's truncate, want none", held, got)
		}
		select {
		case <-c.emittedOnce:
		default:
			t.Fatalf("held %v: the high watermark did not settle the chunk", held)
		}
	}
}
