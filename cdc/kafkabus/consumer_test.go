package kafkabus

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// gateSink records what it was given; while blocked it fails every write.
type gateSink struct {
	mu       sync.Mutex
	got      []string
	ids      []string
	blocked  bool
	attempts int
}

func (s *gateSink) Write(_ context.Context, events []cdc.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts++
	if s.blocked {
		return fmt.Errorf("sink down")
	}
	for _, e := range events {
		s.got = append(s.got, string(cdc.AppendKey(nil, &e))+"@"+e.ID())
		s.ids = append(s.ids, e.ID())
	}
	return nil
}

func (s *gateSink) Close(context.Context) error { return nil }

func (s *gateSink) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

func publishN(t *testing.T, brokers []string, start, n int, origin string) {
	t.Helper()
	p, err := New(Config{Brokers: brokers, CreateTopics: true, Partitions: 3}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	events := make([]cdc.Event, n)
	for i := range events {
		k := (start + i) % 5
		events[i] = cdc.Event{
			Op: cdc.OpUpdate, Schema: "public", Table: "t", Origin: origin,
			Key:   cdc.Row{{Name: "id", Value: json.RawMessage(fmt.Sprint(k))}},
			After: cdc.Row{{Name: "id", Value: json.RawMessage(fmt.Sprint(k))}},
			Pos:   cdc.Position{CommitLSN: cdc.LSN(1000 + start + i)},
		}
	}
	if err := p.Publish(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// runConsumer runs a consumer until stop is called or the test ends; stop
// waits for Run to return and reports its error.
func runConsumer(t *testing.T, cfg ConsumerConfig, sink cdc.Sink) (c *Consumer, stop func()) {
	t.Helper()
	c, err := NewConsumer(cfg, sink, zerolog.New(zerolog.NewTestWriter(t)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("consumer: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return c, stop
}

func TestConsumerDeliversInOrderAndCommitsOnlyDelivered(t *testing.T) {
	k := cdctest.StartKafka(t, kfake.NumBrokers(1))
	publishN(t, k.Brokers(), 0, 50, "")
	cfg := ConsumerConfig{Brokers: k.Brokers(), Group: "cdcd.to-erp", Topics: []string{"cdcd.public.t"}, System: "erp"}

	sink := &gateSink{}
	_, stop := runConsumer(t, cfg, sink)
	cdctest.Eventually(t, 30*time.Second, "50 events delivered", func() bool { return len(sink.snapshot()) == 50 })
	stop()
	// Per key, positions increase (ids are "0/<lsn hex>/0", same width here).
	last := map[string]string{}
	for _, s := range sink.snapshot() {
		key, id, _ := strings.Cut(s, "@")
		if prev, ok := last[key]; ok && id <= prev {
			t.Fatalf("key %s: %s after %s", key, id, prev)
		}
		last[key] = id
	}

	// A sink that is down: nothing is committed, so a new consumer of the
	// same group gets the messages once the sink is back.
	publishN(t, k.Brokers(), 50, 10, "")
	down := &gateSink{blocked: true}
	_, stop = runConsumer(t, cfg, down)
	cdctest.Eventually(t, 30*time.Second, "the failing sink to be retried", func() bool {
		down.mu.Lock()
		defer down.mu.Unlock()
		return down.attempts >= 2
	})
	stop()
	back := &gateSink{}
	runConsumer(t, cfg, back)
	cdctest.Eventually(t, 30*time.Second, "the 10 undelivered events", func() bool { return len(back.snapshot()) == 10 })
}

func TestConsumerSkipsEventsFromItsOwnSystem(t *testing.T) {
	k := cdctest.StartKafka(t, kfake.NumBrokers(1))
	publishN(t, k.Brokers(), 0, 5, "erp") // came from the ERP
	publishN(t, k.Brokers(), 5, 5, "")
	sink := &gateSink{}
	runConsumer(t, ConsumerConfig{Brokers: k.Brokers(), Group: "g", Topics: []string{"cdcd.public.t"}, System: "erp"}, sink)
	cdctest.Eventually(t, 30*time.Second, "the local events", func() bool { return len(sink.snapshot()) == 5 })
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for i := range sink.ids {
		want := cdc.Position{CommitLSN: cdc.LSN(1005 + i)}.String()
		if !slices.Contains(sink.ids, want) {
			t.Fatalf("delivered %v, want the five local events (missing %s at %d)", sink.ids, want, i)
		}
	}
}

// A backfill's rows name their pipelines (HeaderPipelines): a consumer
// group delivers those naming its pipeline, and every other event.
func TestConsumerDeliversBackfillRowsOnlyToTheirPipelines(t *testing.T) {
	k := cdctest.StartKafka(t, kfake.NumBrokers(1))
	p, err := New(Config{Brokers: k.Brokers(), CreateTopics: true, Partitions: 1}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pipelines := [][]string{{"a"}, {"b"}, nil, {"c", "a"}}
	events := make([]cdc.Event, len(pipelines))
	for i, ps := range pipelines {
		events[i] = cdc.Event{
			Op: cdc.OpRead, Schema: "public", Table: "t", Origin: map[bool]string{true: "crm"}[i == 3], Pipelines: ps,
			Key:   cdc.Row{{Name: "id", Value: json.RawMessage(fmt.Sprint(i))}},
			After: cdc.Row{{Name: "id", Value: json.RawMessage(fmt.Sprint(i))}},
			Pos:   cdc.Position{CommitLSN: cdc.LSN(1000 + i)},
		}
	}
	if err := p.Publish(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	sink := &gateSink{}
	runConsumer(t, ConsumerConfig{Brokers: k.Brokers(), Group: "cdcd.a", Topics: []string{"cdcd.public.t"}, System: "erp", Pipeline: "a"}, sink)
	cdctest.Eventually(t, 30*time.Second, "three events", func() bool { return len(sink.snapshot()) == 3 })
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for _, i := range []int{0, 2, 3} {
		if want := (cdc.Position{CommitLSN: cdc.LSN(1000 + i)}).String(); !slices.Contains(sink.ids, want) {
			t.Fatalf("delivered %v, want events 0, 2 and 3 (missing %s)", sink.ids, want)
		}
	}
}

// heldSink takes its first Write and holds every later one until release
// is closed.
type heldSink struct {
	gateSink
	writes  atomic.Int32
	release chan struct{}
}

func (s *heldSink) Write(ctx context.Context, events []cdc.Event) error {
	if s.writes.Add(1) > 1 {
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.gateSink.Write(ctx, events)
}

// cdcd_kafka_consumer_lag is what the pipeline.backlog health rule reads
// on Kafka: it must count the messages the group has not committed yet,
// not the -1 that kafka-go's Reader.Lag gives for a consumer group.
func TestConsumerLagCountsTheMessagesLeft(t *testing.T) {
	k := cdctest.StartKafka(t, kfake.NumBrokers(1))
	publishN(t, k.Brokers(), 0, 50, "")
	cfg := ConsumerConfig{Brokers: k.Brokers(), Group: "cdcd.to-erp", Topics: []string{"cdcd.public.t"}, System: "erp", MaxBatch: 5}
	sink := &heldSink{release: make(chan struct{})}
	c, _ := runConsumer(t, cfg, sink)
	lag := c.m.lag.WithLabelValues(cfg.Group)

	// The first batch is committed, the second is held: the rest of the
	// partitions the first batch came from is left.
	cdctest.Eventually(t, 30*time.Second, "the first batch delivered and a second one held", func() bool {
		return len(sink.snapshot()) > 0 && sink.writes.Load() >= 2 && metricValue(lag) != 0
	})
	if got, max := metricValue(lag), float64(50-len(sink.snapshot())); got <= 0 || got > max {
		t.Fatalf("lag after the first batch = %v, want 1..%v", got, max)
	}
	close(sink.release)
	cdctest.Eventually(t, 30*time.Second, "every event delivered and the lag 0", func() bool {
		return len(sink.snapshot()) == 50 && metricValue(lag) == 0
	})
}

// Regression test: the lag was only noted from the messages a member
// committed, so a member whose sink took nothing since it got its
// partitions (a sink down from the start, or partitions taken over at a
// rebalance) reported a lag of 0 however much was waiting, and the
// pipeline.backlog health rule did not see it.
func TestConsumerLagCountsTheMessagesOfAStalledSink(t *testing.T) {
	k := cdctest.StartKafka(t, kfake.NumBrokers(1))
	publishN(t, k.Brokers(), 0, 50, "")
	cfg := ConsumerConfig{Brokers: k.Brokers(), Group: "cdcd.to-erp", Topics: []string{"cdcd.public.t"}, System: "erp", MaxBatch: 5}
	held := make(chan struct{})
	defer close(held)
	sink := &vendorSink{d: &deliveries{}}
	sink.gate.Store(&held)
	c, _ := runConsumer(t, cfg, sink)
	lag := c.m.lag.WithLabelValues(cfg.Group)
	cdctest.Eventually(t, 30*time.Second, "a Write held", func() bool { return sink.active.Load() > 0 })
	cdctest.Eventually(t, 30*time.Second, "the lag to count the 50 messages", func() bool { return metricValue(lag) == 50 })
}
