package kafkabus

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// writerErrors counts the writer's failed produce attempts in a log stream.
type writerErrors struct{ n atomic.Int32 }

func (w *writerErrors) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte("kafka writer error")) {
		w.n.Add(1)
	}
	return len(b), nil
}

func keyedTxn(lsn cdc.LSN, seq, keys int) []cdc.Event {
	events := make([]cdc.Event, keys)
	for id := range keys {
		events[id] = rowEvent("public", "t", id, seq, lsn, uint32(id))
	}
	return events
}

// checkKeyOrder asserts that every key's changes include each of want and
// end with the last of them; with strict, that seq never goes back.
func checkKeyOrder(t *testing.T, brokers []string, strict bool, want ...int) {
	t.Helper()
	seqs := map[string][]int{}
	for _, r := range cdctest.ReadTopic(t, brokers, "cdcd.public.t") {
		env := decodeEnvelope(t, r.Value)
		var seq int
		fmt.Sscan(string(env.After["seq"]), &seq)
		seqs[string(r.Key)] = append(seqs[string(r.Key)], seq)
	}
	for key, s := range seqs {
		for i := 1; strict && i < len(s); i++ {
			if s[i] < s[i-1] {
				t.Errorf("key %s: seq %v goes back", key, s)
			}
		}
		for _, w := range want {
			if !slices.Contains(s, w) {
				t.Errorf("key %s: seq %v lacks %d", key, s, w)
			}
		}
		if s[len(s)-1] != want[len(want)-1] {
			t.Errorf("key %s: seq %v does not end with %d", key, s, want[len(want)-1])
		}
	}
}

// TestBrokerOutage publishes through a stop and restart of the cluster:
// events handed over during the outage are retried and delivered once the
// brokers are back, or nacked when the retries run out; either way the
// tracker never confirms past an event Kafka did not take.
func TestBrokerOutage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		maxAttempts int
		nacked      bool
	}{
		{"retried", 0, false},
		{"nacked", 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k := cdctest.StartKafka(t)
			brokers := k.Brokers()
			failures := new(writerErrors)
			log := zerolog.New(io.MultiWriter(zerolog.NewTestWriter(t), failures)).Level(zerolog.DebugLevel)
			p, _ := newTestProducer(t, brokers, log, func(c *Config) { c.MaxAttempts = tc.maxAttempts })
			ctx := context.Background()
			const keys = 8
			const end1, end2, end3 = 101, 201, 301

			tr := cdc.NewTracker(0)
			publishTxn(t, ctx, p, tr, end1, keyedTxn(100, 1, keys))
			waitFor(t, "first transaction confirmed", 10*time.Second, func() bool { return tr.Confirmed() == end1 })

			k.Stop()
			publishTxn(t, ctx, p, tr, end2, keyedTxn(200, 2, keys))
			waitFor(t, "a failed produce attempt", 10*time.Second, func() bool { return failures.n.Load() > 0 })
			if tc.nacked {
				waitFor(t, "a nack", 10*time.Second, func() bool { return tr.Err() != nil })
			}
			if got := tr.Confirmed(); got != end1 {
				t.Fatalf("confirmed %v during the outage, want %v", got, cdc.LSN(end1))
			}
			k.Restart()

			sent := metricValue(p.m.messages)
			publishTxn(t, ctx, p, tr, end3, keyedTxn(300, 3, keys))
			waitFor(t, "acks after the outage", 20*time.Second, func() bool {
				return tr.Confirmed() == end3 || metricValue(p.m.messages) >= sent+keys && tr.Err() != nil
			})
			if tr.Err() == nil {
				if tc.nacked {
					t.Fatal("no nack although the retries ran out")
				}
				checkKeyOrder(t, brokers, true, 1, 2, 3)
				return
			}
			if got := tr.Confirmed(); got != end1 {
				t.Fatalf("confirmed %v past the nacked transaction ending at %v", got, cdc.LSN(end1))
			}
			if got := metricValue(p.m.errors); got == 0 {
				t.Error("cdcd_kafka_produce_errors_total = 0 after a nack")
			}

			// The reader restarts from the confirmed position and publishes
			// everything after it again through the same producer.
			tr2 := cdc.NewTracker(tr.Confirmed())
			publishTxn(t, ctx, p, tr2, end2, keyedTxn(200, 2, keys))
			publishTxn(t, ctx, p, tr2, end3, keyedTxn(300, 3, keys))
			waitFor(t, "replayed transactions confirmed", 20*time.Second, func() bool {
				return tr2.Confirmed() == end3 || tr2.Err() != nil
			})
			if err := tr2.Err(); err != nil {
				t.Fatalf("publish after the outage: %v", err)
			}
			checkKeyOrder(t, brokers, false, 1, 2, 3)
		})
	}
}
