package kafkabus

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a wait for an outcome
	}
}

func newTestProducer(t testing.TB, brokers []string, log zerolog.Logger, mod func(*Config)) (*Producer, *prometheus.Registry) {
	t.Helper()
	cfg := Config{
		Brokers:      brokers,
		CreateTopics: true,
		Linger:       time.Millisecond,
		Source:       cdc.SourceInfo{Name: "cdcd", DB: "app", Version: "test"},
	}
	if mod != nil {
		mod(&cfg)
	}
	reg := prometheus.NewRegistry()
	p, err := New(cfg, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return p, reg
}

func testLogger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
}

// rowEvent is a change of row id in schema.table carrying seq, the
// transaction's index-th change at commit LSN lsn.
func rowEvent(schema, table string, id, seq int, lsn cdc.LSN, index uint32) cdc.Event {
	return cdc.Event{
		Op: cdc.OpUpdate, Source: cdc.SourcePostgres, Schema: schema, Table: table,
		Key:        cdc.Row{{Name: "id", Value: json.RawMessage(fmt.Sprint(id))}},
		After:      cdc.Row{{Name: "id", Value: json.RawMessage(fmt.Sprint(id))}, {Name: "seq", Value: json.RawMessage(fmt.Sprint(seq))}},
		CommitTime: time.Unix(1700000000, 0),
		Pos:        cdc.Position{CommitLSN: lsn, Index: index},
		TxID:       uint32(lsn),
	}
}

// countAck counts its settlements and remembers the last error.
type countAck struct {
	n   atomic.Int32
	mu  sync.Mutex
	err error
}

func (a *countAck) Ack(err error) {
	a.n.Add(1)
	a.mu.Lock()
	a.err = err
	a.mu.Unlock()
}

func (a *countAck) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// publishTxn publishes events as one transaction of tr, sealed at end.
func publishTxn(t testing.TB, ctx context.Context, p *Producer, tr *cdc.Tracker, end cdc.LSN, events []cdc.Event) {
	t.Helper()
	x := tr.Open()
	x.Add(len(events))
	for i := range events {
		events[i].Ack = x
	}
	if err := p.Publish(ctx, events); err != nil {
		t.Fatalf("publish: %v", err)
	}
	x.Seal(end)
}

// envelope is the part of the Debezium envelope the tests check.
type envelope struct {
	Op     string                     `json:"op"`
	After  map[string]json.RawMessage `json:"after"`
	Source struct {
		Schema string  `json:"schema"`
		Table  string  `json:"table"`
		LSN    uint64  `json:"lsn"`
		Index  uint32  `json:"index"`
		Origin *string `json:"origin"`
	} `json:"source"`
}

func decodeEnvelope(t testing.TB, v []byte) envelope {
	t.Helper()
	var e envelope
	if err := json.Unmarshal(v, &e); err != nil {
		t.Fatalf("value %q is not an envelope: %v", v, err)
	}
	return e
}

// metricValue reads a counter or gauge.
func metricValue(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}
