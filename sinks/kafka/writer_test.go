package kafka

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/syncapi"
)

var src = cdc.SourceInfo{Name: "cdcd", DB: "shop", Version: "1.0.0"}

func newWriter(t *testing.T, brokers []string, value string) *Writer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Brokers, cfg.Topic, cfg.Value = brokers, "orders.out", value
	w, err := New("out", cfg, config.Env{Log: zerolog.New(zerolog.NewTestWriter(t)), Source: src})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func records() []syncapi.Record {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ev := func(op cdc.Op, idx uint32, before, after cdc.Row) *cdc.Event {
		return &cdc.Event{Op: op, Schema: "public", Table: "orders", CommitTime: at, TxID: 9,
			Pos: cdc.Position{CommitLSN: 0x40, Index: idx}, Key: cdc.Row{{Name: "id", Value: json.RawMessage(`7`)}},
			Before: before, After: after}
	}
	row := func(status string) cdc.Row {
		return cdc.Row{{Name: "id", Value: json.RawMessage(`7`)}, {Name: "status", Value: json.RawMessage(`"` + status + `"`)}}
	}
	key := `{"id":7}`
	return []syncapi.Record{
		{Event: ev(cdc.OpCreate, 0, nil, row("new")), Op: cdc.OpCreate, Key: key, Fields: map[string]any{"order_id": 7.0, "state": "new"}},
		{Event: ev(cdc.OpUpdate, 1, row("new"), row("shipped")), Op: cdc.OpUpdate, Key: key, Fields: map[string]any{"order_id": 7.0, "state": "shipped"}},
		{Event: ev(cdc.OpDelete, 2, row("shipped"), nil), Op: cdc.OpDelete, Key: key, Fields: map[string]any{}},
	}
}

func write(t *testing.T, w *Writer, recs []syncapi.Record) {
	t.Helper()
	res, err := w.Write(context.Background(), recs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("record %d: %v", i, r.Err)
		}
	}
}

func TestForwardsEnvelopes(t *testing.T) {
	t.Parallel()
	k := cdctest.StartKafka(t)
	k.CreateTopic(t, "orders.out", 3)
	w := newWriter(t, k.Brokers(), ValueEnvelope)
	write(t, w, records())

	got := cdctest.ReadTopic(t, k.Brokers(), "orders.out")
	if len(got) != 3 {
		t.Fatalf("topic holds %d records, want 3", len(got))
	}
	for i, want := range []struct{ op, id string }{{"c", "0/40/0"}, {"u", "0/40/1"}, {"d", "0/40/2"}} {
		r := got[i]
		if string(r.Key) != `{"id":7}` || r.Partition != got[0].Partition {
			t.Errorf("record %d: key %s partition %d", i, r.Key, r.Partition)
		}
		if id, _ := r.Header(EventIDHeader); id != want.id {
			t.Errorf("record %d: event id %q, want %q", i, id, want.id)
		}
		var env struct {
			Op     string         `json:"op"`
			Before map[string]any `json:"before"`
			After  map[string]any `json:"after"`
			Source struct{ Name, DB, Table string }
		}
		if err := json.Unmarshal(r.Value, &env); err != nil {
			t.Fatalf("record %d: %v in %s", i, err, r.Value)
		}
		if env.Op != want.op || env.Source.DB != "shop" || env.Source.Table != "orders" {
			t.Errorf("record %d: %s", i, r.Value)
		}
	}
}

func TestForwardsFieldsWithTombstones(t *testing.T) {
	t.Parallel()
	k := cdctest.StartKafka(t)
	k.CreateTopic(t, "orders.out", 1)
	w := newWriter(t, k.Brokers(), ValueFields)
	write(t, w, records())

	got := cdctest.ReadTopic(t, k.Brokers(), "orders.out")
	if len(got) != 3 {
		t.Fatalf("topic holds %d records, want 3", len(got))
	}
	if string(got[1].Value) != `{"order_id":7,"state":"shipped"}` {
		t.Errorf("value %s", got[1].Value)
	}
	if got[2].Value != nil {
		t.Errorf("delete value %q, want a tombstone", got[2].Value)
	}
}

func TestMissingTopicIsRetried(t *testing.T) {
	t.Parallel()
	k := cdctest.StartKafka(t)
	w := newWriter(t, k.Brokers(), ValueEnvelope)
	w.cfg.Timeout = 5 * time.Second
	res, err := w.Write(context.Background(), records()[:1])
	if err == nil && res[0].Err == nil {
		t.Fatal("write to a missing topic succeeded")
	}
	if err == nil {
		err = res[0].Err
	}
	if cdc.IsPermanent(err) {
		t.Errorf("got permanent %v; a topic may be created later", err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	c.Brokers = []string{"nohost"}
	c.Topic = "bad topic"
	c.Value = "avro"
	err := c.Validate()
	for _, path := range []string{"brokers[0]", "topic", "value"} {
		if err == nil || !strings.Contains(err.Error(), path+":") {
			t.Errorf("no problem reported for %s in %v", path, err)
		}
	}
}
