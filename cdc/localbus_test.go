package cdc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// recordingSink keeps what it was given; failFirst makes its first writes fail.
type recordingSink struct {
	mu        sync.Mutex
	got       []string
	failFirst int
	block     chan struct{}
}

func (s *recordingSink) Write(ctx context.Context, events []Event) error {
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failFirst > 0 {
		s.failFirst--
		return errors.New("vendor unavailable")
	}
	for _, e := range events {
		s.got = append(s.got, e.Table+":"+e.ID())
	}
	return nil
}

func (s *recordingSink) Close(context.Context) error { return nil }

func (s *recordingSink) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLocalBusFanOutAndEchoSuppression(t *testing.T) {
	erp, shop, pos := &recordingSink{}, &recordingSink{}, &recordingSink{}
	var held sync.Map
	onOrigin := func(system string) { n, _ := held.LoadOrStore(system, new(atomic.Int32)); n.(*atomic.Int32).Add(1) }
	bus := NewLocalBus(LocalBusConfig{OnOrigin: onOrigin}, []Route{
		{Name: "to-erp", System: "erp", Sink: erp},
		{Name: "to-shop", System: "shop", Sink: shop, Match: func(e *Event) bool { return e.Table == "inventory" }},
		{Name: "to-pos", System: "pos", Sink: pos},
	}, zerolog.Nop(), nil)
	tr := NewTracker(0)
	x := tr.Open()
	events := []Event{
		{Table: "inventory", Pos: Position{100, 0}},
		{Table: "inventory", Pos: Position{100, 1}, Origin: "pos"}, // came from the POS
		{Table: "orders", Pos: Position{100, 2}},
	}
	for i := range events {
		events[i].Ack = x
	}
	x.Add(len(events))
	if err := bus.Publish(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	x.Seal(200)
	waitFor(t, "confirmation", func() bool { return tr.Confirmed() == 200 })
	if err := bus.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[*recordingSink][]string{
		erp:  {"inventory:0/64/0", "inventory:0/64/1", "orders:0/64/2"},
		shop: {"inventory:0/64/0", "inventory:0/64/1"},
		pos:  {"inventory:0/64/0", "orders:0/64/2"}, // never back to where it came from
	}
	for s, w := range want {
		if got := s.ids(); !equal(got, w) {
			t.Errorf("sink got %v, want %v", got, w)
		}
	}
	n, _ := held.Load("pos")
	if n == nil || n.(*atomic.Int32).Load() != 1 {
		t.Errorf("origin echoes counted for pos: %v, want 1", n)
	}
}

func TestLocalBusRetriesFailedWritesInOrder(t *testing.T) {
	s := &recordingSink{failFirst: 2}
	bus := NewLocalBus(LocalBusConfig{BatchSize: 2}, []Route{{Name: "r", System: "s", Sink: s}}, zerolog.Nop(), nil)
	defer bus.Close(context.Background())
	tr := NewTracker(0)
	var want []string
	for i := range 5 {
		x := tr.Open()
		x.Add(1)
		e := Event{Table: "t", Pos: Position{LSN(i + 1), 0}, Ack: x}
		want = append(want, "t:"+e.ID())
		if err := bus.Publish(context.Background(), []Event{e}); err != nil {
			t.Fatal(err)
		}
		x.Seal(LSN(i + 10))
	}
	waitFor(t, "all confirmed", func() bool { return tr.Confirmed() == 14 })
	if got := s.ids(); !equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
}

func TestLocalBusBackpressure(t *testing.T) {
	s := &recordingSink{block: make(chan struct{})}
	bus := NewLocalBus(LocalBusConfig{Capacity: 2}, []Route{{Name: "r", Sink: s}}, zerolog.Nop(), nil)
	defer bus.Close(context.Background())
	if err := bus.Publish(context.Background(), []Event{{Table: "a"}, {Table: "b"}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := bus.Publish(ctx, []Event{{Table: "c"}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish beyond capacity: %v, want deadline exceeded", err)
	}
	close(s.block)
	if err := bus.Publish(context.Background(), []Event{{Table: "c"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery", func() bool { return len(s.ids()) == 3 })
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// overlappingSink is an Overlapping sink whose Writes of events listed in
// hold wait for release; it notes which Writes returned.
type overlappingSink struct {
	hold     map[string]bool
	release  chan struct{}
	mu       sync.Mutex
	started  []string
	returned []string
	fails    int // the first Writes of held events fail
}

func (s *overlappingSink) Overlap() int { return 2 }

func (s *overlappingSink) Write(ctx context.Context, events []Event) error {
	id := events[0].ID()
	s.mu.Lock()
	s.started = append(s.started, id)
	s.mu.Unlock()
	if s.hold[id] {
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold[id] && s.fails > 0 {
		s.fails--
		return errors.New("store unavailable")
	}
	s.returned = append(s.returned, id)
	return nil
}

func (s *overlappingSink) Close(context.Context) error { return nil }

func (s *overlappingSink) calls() (started, returned []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.started...), append([]string(nil), s.returned...)
}

// ackOrder notes the events acknowledged, in order.
type ackOrder struct {
	mu  sync.Mutex
	ids []string
}

type ackOf struct {
	o  *ackOrder
	id string
}

func (a ackOf) Ack(err error) {
	if err == nil {
		a.o.mu.Lock()
		a.o.ids = append(a.o.ids, a.id)
		a.o.mu.Unlock()
	}
}

func (o *ackOrder) acked() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.ids...)
}

// An Overlapping sink gets the next batch while it writes one; batches
// are acknowledged in order all the same, and a failed one is retried
// while the next one runs.
func TestLocalBusOverlapsWritesAndAcksInOrder(t *testing.T) {
	for _, fails := range []int{0, 2} {
		s := &overlappingSink{hold: map[string]bool{"0/1/0": true}, release: make(chan struct{}), fails: fails}
		bus := NewLocalBus(LocalBusConfig{BatchSize: 1}, []Route{{Name: "r", System: "s", Sink: s}}, zerolog.Nop(), nil)
		var acks ackOrder
		publish := func(lsn LSN) {
			e := Event{Table: "t", Pos: Position{lsn, 0}}
			e.Ack = ackOf{&acks, e.ID()}
			if err := bus.Publish(context.Background(), []Event{e}); err != nil {
				t.Fatal(err)
			}
		}
		publish(1)
		publish(2)
		publish(3)
		waitFor(t, "the second batch written while the first is held", func() bool {
			_, returned := s.calls()
			return equal(returned, []string{"0/2/0"})
		})
		if got := acks.acked(); len(got) != 0 {
			t.Fatalf("acknowledged %v while the first batch is held", got)
		}
		if started, _ := s.calls(); len(started) != 2 {
			t.Fatalf("Writes started: %v; want the first two batches only", started)
		}
		close(s.release)
		waitFor(t, "all acknowledged", func() bool { return len(acks.acked()) == 3 })
		if got := acks.acked(); !equal(got, []string{"0/1/0", "0/2/0", "0/3/0"}) {
			t.Errorf("fails=%d: acknowledged %v, want publish order", fails, got)
		}
		if err := bus.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// batchingSink is a recordingSink that asks for batches of max events
// and records the size of each Write.
type batchingSink struct {
	recordingSink
	max   int
	sizes []int
}

func (s *batchingSink) Write(ctx context.Context, events []Event) error {
	s.mu.Lock()
	s.sizes = append(s.sizes, len(events))
	s.mu.Unlock()
	return s.recordingSink.Write(ctx, events)
}

func (s *batchingSink) MaxBatch() int { return s.max }

// A sink that implements Batcher gets writes of up to its MaxBatch events,
// larger than the bus's batch size, in order.
func TestLocalBusGivesABatcherItsBatchSize(t *testing.T) {
	s := &batchingSink{recordingSink: recordingSink{block: make(chan struct{})}, max: 5}
	bus := NewLocalBus(LocalBusConfig{BatchSize: 2}, []Route{{Name: "r", System: "s", Sink: s}}, zerolog.Nop(), nil)
	defer bus.Close(context.Background())
	var events, want []string
	for i := range 12 {
		events = append(events, fmt.Sprint(i))
	}
	for i, id := range events {
		e := Event{Table: id}
		want = append(want, id+":"+e.ID())
		if err := bus.Publish(context.Background(), []Event{e}); err != nil {
			t.Fatal(err)
		}
		if i == 0 { // the first Write takes event 0 alone and blocks; the rest queue
			waitFor(t, "the first write", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.sizes) == 1 })
		}
	}
	close(s.block)
	waitFor(t, "all delivered", func() bool { return len(s.ids()) == 12 })
	if got := s.ids(); !equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if fmt.Sprint(s.sizes) != "[1 5 5 1]" {
		t.Fatalf("write sizes %v, want [1 5 5 1]", s.sizes)
	}
}

// Closing the bus while an overlapping sink's Writes hang (a vendor that
// does not answer) returns once they end with the bus's context: a Write
// given up unacknowledged is not waited for again.
func TestLocalBusClosesWhileOverlappingWritesHang(t *testing.T) {
	s := &overlappingSink{hold: map[string]bool{"0/1/0": true, "0/2/0": true}, release: make(chan struct{})}
	bus := NewLocalBus(LocalBusConfig{BatchSize: 1}, []Route{{Name: "r", System: "s", Sink: s}}, zerolog.Nop(), nil)
	var acks ackOrder
	for lsn := LSN(1); lsn <= 3; lsn++ {
		e := Event{Table: "t", Pos: Position{lsn, 0}}
		e.Ack = ackOf{&acks, e.ID()}
		if err := bus.Publish(context.Background(), []Event{e}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "two Writes in flight", func() bool {
		started, _ := s.calls()
		return len(started) == 2
	})
	// The daemon gives Close a deadline for draining the queue.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- bus.Close(ctx) }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return 10s after it was called, with the sink's Writes hanging")
	}
	if got := acks.acked(); len(got) != 0 {
		t.Errorf("acknowledged %v, though no Write succeeded", got)
	}
}

type forgetfulSink struct{ recordingSink }

func (*forgetfulSink) ForgetsEvents() bool { return true }

// A backfill reuses its rows' memory only when every route of its
// pipelines forgets the events it delivered.
func TestLocalBusForgets(t *testing.T) {
	bus := NewLocalBus(LocalBusConfig{}, []Route{
		{Name: "file", Sink: &forgetfulSink{}},
		{Name: "keeps", Sink: &recordingSink{}},
	}, zerolog.Nop(), nil)
	defer bus.Close(context.Background())
	for _, c := range []struct {
		pipelines []string
		want      bool
	}{{[]string{"file"}, true}, {[]string{"file", "keeps"}, false}, {[]string{"keeps"}, false}, {[]string{"none"}, true}} {
		if got := bus.Forgets(c.pipelines); got != c.want {
			t.Errorf("Forgets(%v) = %v, want %v", c.pipelines, got, c.want)
		}
	}
}

// firstSink records where the first event of each Write lies.
type firstSink struct {
	recordingSink
	firsts []*Event
}

func (s *firstSink) Write(ctx context.Context, events []Event) error {
	s.mu.Lock()
	s.firsts = append(s.firsts, &events[0])
	s.mu.Unlock()
	return s.recordingSink.Write(ctx, events)
}

func (s *firstSink) MaxBatch() int { return 2 }

func (s *firstSink) written() []*Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Event(nil), s.firsts...)
}

// A Publish whose events one route takes all of, and no other route any,
// reaches that route's sink as published, not copied, in Writes of its
// size; events another route takes too, or a Write holding the events of
// two Publishes, are copies.
func TestLocalBusHandsAWholePublishUncopied(t *testing.T) {
	ctx := context.Background()
	alone, shared, other := &firstSink{}, &firstSink{}, &firstSink{}
	bus := NewLocalBus(LocalBusConfig{}, []Route{
		{Name: "alone", System: "a", Sink: alone, Match: func(e *Event) bool { return e.Table == "alone" }},
		{Name: "shared", System: "s", Sink: shared, Match: func(e *Event) bool { return e.Table != "alone" }},
		{Name: "other", System: "o", Sink: other, Match: func(e *Event) bool { return e.Table == "both" }},
	}, zerolog.Nop(), nil)
	defer bus.Close(ctx)
	tr := NewTracker(0)
	x := tr.Open()
	publish := func(table string, n int) []Event {
		events := make([]Event, n)
		for i := range events {
			events[i] = Event{Table: table, Pos: Position{100, uint32(i)}, Ack: x}
		}
		x.Add(n)
		if err := bus.Publish(ctx, events); err != nil {
			t.Fatal(err)
		}
		return events
	}
	mine := publish("alone", 3)
	both := publish("both", 1)
	x.Seal(200)
	waitFor(t, "confirmation", func() bool { return tr.Confirmed() == 200 })
	if got := alone.written(); len(got) != 2 || got[0] != &mine[0] || got[1] != &mine[2] {
		t.Errorf("the route alone wrote from %v, want the published %v and %v", got, &mine[0], &mine[2])
	}
	for _, s := range []*firstSink{shared, other} {
		if got := s.written(); len(got) != 1 || got[0] == &both[0] {
			t.Errorf("a route sharing the events wrote from %v, want a copy of %v", got, &both[0])
		}
	}

	// Two Publishes queued behind a Write: one Write of both, a copy.
	alone.block = make(chan struct{})
	x = tr.Open()
	first := publish("alone", 1)
	waitFor(t, "the blocked write", func() bool { return len(alone.written()) == 3 })
	publish("alone", 1)
	publish("alone", 1)
	x.Seal(300)
	close(alone.block)
	waitFor(t, "confirmation", func() bool { return tr.Confirmed() == 300 })
	got := alone.written()
	if len(got) != 4 || got[2] != &first[0] {
		t.Fatalf("writes from %v, want 4, the third from the published %v", got, &first[0])
	}
	if want := 6; len(alone.ids()) != want {
		t.Errorf("%d events delivered, want %d", len(alone.ids()), want)
	}
}
