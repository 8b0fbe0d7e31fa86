package kafkabus

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// holdProduce makes the cluster hold every produce request until the
// returned release is called, and counts the requests it holds.
func holdProduce(k *cdctest.Kafka) (held func() int, release func()) {
	var (
		mu      sync.Mutex
		n       int
		gate    = make(chan struct{})
		once    sync.Once
		cluster = k.Cluster()
	)
	cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		select {
		case <-gate:
			return nil, nil, false
		default:
		}
		mu.Lock()
		n++
		mu.Unlock()
		cluster.SleepControl(func() { <-gate })
		return nil, nil, false
	})
	held = func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
	return held, func() { once.Do(func() { close(gate) }) }
}

func TestPublishBlocksWhileBufferIsFull(t *testing.T) {
	t.Parallel()
	k := cdctest.StartKafka(t)
	p, _ := newTestProducer(t, k.Brokers(), testLogger(t), func(c *Config) {
		c.BufferEvents = 3
		c.BatchSize = 1
	})
	ctx := context.Background()
	if err := p.EnsureTopics(ctx, []string{"cdcd.public.t"}); err != nil {
		t.Fatal(err)
	}
	held, release := holdProduce(k)
	defer release()

	acks := make([]*countAck, 5)
	event := func(i int) []cdc.Event {
		acks[i] = new(countAck)
		e := rowEvent("public", "t", i, 1, 1, uint32(i))
		e.Ack = acks[i]
		return []cdc.Event{e}
	}
	for i := range 3 {
		if err := p.Publish(ctx, event(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the broker to hold a produce request", 10*time.Second, func() bool { return held() > 0 })
	if got := metricValue(p.m.buffered); got != 3 {
		t.Fatalf("buffered events = %v, want 3", got)
	}

	// A full buffer: Publish gives up when its context ends, taking nothing.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err := p.Publish(short, event(3))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || acks[3].n.Load() != 0 {
		t.Fatalf("publish into a full buffer: %v with the ack settled %d times; want DeadlineExceeded and no ack", err, acks[3].n.Load())
	}

	done := make(chan error, 1)
	go func() { done <- p.Publish(ctx, event(4)) }()
	select {
	case err := <-done:
		t.Fatalf("publish returned (%v) while the buffer was full", err)
	default:
	}
	for i := range 3 {
		if n := acks[i].n.Load(); n != 0 {
			t.Fatalf("event %d acked before Kafka answered", i)
		}
	}

	release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("publish still blocked after Kafka acknowledged the buffered events")
	}
	// The events went to different partitions, so their acks come in any
	// order: the last published may be settled before the first.
	waitFor(t, "all acks", 10*time.Second, func() bool {
		for _, i := range []int{0, 1, 2, 4} {
			if acks[i].n.Load() == 0 {
				return false
			}
		}
		return true
	})
	for _, i := range []int{0, 1, 2, 4} {
		if n, err := acks[i].n.Load(), acks[i].Err(); n != 1 || err != nil {
			t.Errorf("event %d settled %d times, last with %v", i, n, err)
		}
	}
	if recs := cdctest.ReadTopic(t, k.Brokers(), "cdcd.public.t"); len(recs) != 4 {
		t.Errorf("topic holds %d records, want 4", len(recs))
	}
}

func TestBudgetAdmitsOversizedRequestWhenEmpty(t *testing.T) {
	t.Parallel()
	b := newBudget(2, 100)
	ctx := context.Background()
	if _, err := b.acquire(ctx, 5, 1000); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := b.acquire(short, 1, 1); err == nil {
		t.Fatal("acquired beyond the budget while an oversized request was in flight")
	}
	if left := b.release(5, 1000); left != 0 {
		t.Fatalf("%d events left in flight", left)
	}
	if n, err := b.acquire(ctx, 2, 100); err != nil || n != 2 {
		t.Fatalf("acquire the whole budget: %d, %v", n, err)
	}
}
