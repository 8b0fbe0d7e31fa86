package backfill

import (
	"encoding/json"
	"slices"
	"strconv"
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
