package cdc

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cdcd-dev/cdcd/internal/promshare"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Route sends the events it matches to one sink.
type Route struct {
	// Name identifies the route (the pipeline) in logs and metrics.
	Name string
	// System is the sink's system. Events whose Origin is this system are
	// never delivered to it: that is where they came from.
	System string
	// Match selects the route's events; nil matches every event.
	Match func(*Event) bool
	Sink  Sink
}

// DefaultBatchSize is the most events the in-process bus gives one
// Sink.Write unless LocalBusConfig.BatchSize or the sink (Batcher) says
// otherwise.
const DefaultBatchSize = 512

// LocalBusConfig sizes the in-process bus.
type LocalBusConfig struct {
	// Capacity bounds the deliveries queued across all routes; Publish
	// blocks beyond it, so it bounds the bus's memory whatever the
	// backlog behind a stalled sink (default 16,384: about 20 MiB of
	// 8-column rows).
	Capacity int
	// BatchSize bounds the events given to one Sink.Write.
	BatchSize int
	// OnOrigin, when set, is called with a route's system each time an
	// event the route matches is held back because it came from there.
	OnOrigin func(system string)
}

// LocalBus is the in-process bus for a single machine. Each route has one
// worker that writes to its sink in publish order, so per-key order holds
// (an Overlapping sink gets the next batches while it writes one, and
// keeps the order itself).
// An event is acknowledged once every route that matched it delivered it.
// A failed write is retried with backoff until it succeeds or the bus is
// closed; a slow route holds back only the confirmation, and, once the
// bus's capacity is used, the reader.
type LocalBus struct {
	cfg    LocalBusConfig
	log    zerolog.Logger
	routes []*route

	mu       sync.Mutex
	inflight int
	space    chan struct{} // closed and replaced when capacity is released
	closed   bool
}

type route struct {
	Route
	bus     *LocalBus
	mu      sync.Mutex
	queue   []*Event
	spans   []span // the Publishes whose events are the queue's and no other route's
	head    int    // the events taken off the queue so far
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	writes  prometheus.Counter
	retries prometheus.Counter
	depth   prometheus.Gauge
}

// span is the events of one Publish that one route, and no other,
// matched every one of: a Write of them alone takes them as they were
// published, not copied.
type span struct {
	first  int // the queue position of events[0], counted like route.head
	events []Event
}

// NewLocalBus starts one worker per route.
func NewLocalBus(cfg LocalBusConfig, routes []Route, log zerolog.Logger, reg prometheus.Registerer) *LocalBus {
	if cfg.Capacity <= 0 {
		cfg.Capacity = 16_384
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	delivered := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cdcd_bus_delivered_total", Help: "Events delivered by the in-process bus, by route.",
	}, []string{"route"})
	retried := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cdcd_bus_write_retries_total", Help: "Failed sink writes that were retried, by route.",
	}, []string{"route"})
	depth := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cdcd_bus_queue_depth", Help: "Events waiting in the in-process bus, by route.",
	}, []string{"route"})
	// A second bus (the inbox's) shares the collectors; routes differ.
	delivered = promshare.MustRegister(reg, delivered)
	retried = promshare.MustRegister(reg, retried)
	depth = promshare.MustRegister(reg, depth)
	b := &LocalBus{cfg: cfg, log: log.With().Str("component", "localbus").Logger(), space: make(chan struct{})}
	for _, rt := range routes {
		r := &route{
			Route: rt, bus: b,
			wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
			writes: delivered.WithLabelValues(rt.Name), retries: retried.WithLabelValues(rt.Name),
			depth: depth.WithLabelValues(rt.Name),
		}
		b.routes = append(b.routes, r)
		go r.run()
	}
	return b
}

// Forgets reports whether every route of the named pipelines has a sink
// that forgets its events once delivered (Forgetful): the events of those
// pipelines alone (Event.Pipelines) are then read by no one once settled.
// The bus itself keeps nothing of a settled event.
func (b *LocalBus) Forgets(pipelines []string) bool {
	for _, r := range b.routes {
		if slices.Contains(pipelines, r.Name) && !Forgets(r.Sink) {
			return false
		}
	}
	return true
}

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("bus closed")

// Publish queues the events on every route that matches them. It blocks
// while the bus is at capacity and takes all of the events or none.
func (b *LocalBus) Publish(ctx context.Context, events []Event) error {
	matched := make([][]*Event, len(b.routes))
	n := 0
	shared := false
	for i := range events {
		e := &events[i]
		k := 0
		for j, r := range b.routes {
			if r.matches(e) {
				matched[j] = append(matched[j], e)
				k++
			}
		}
		switch {
		case k == 0:
			e.Settle(nil)
		case k > 1:
			shared = true
			if e.Ack != nil {
				f := &fanout{parent: e.Ack}
				f.pending.Store(int32(k))
				e.Ack = f
			}
		}
		n += k
	}
	if n == 0 {
		return nil
	}
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return ErrClosed
		}
		if b.inflight == 0 || b.inflight+n <= b.cfg.Capacity {
			b.inflight += n
			b.mu.Unlock()
			break
		}
		space := b.space
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			for i := range events { // undo the fan-out wrapping: none was taken
				if f, ok := events[i].Ack.(*fanout); ok {
					events[i].Ack = f.parent
				}
			}
			return ctx.Err()
		case <-space:
		}
	}
	for j, r := range b.routes {
		if len(matched[j]) > 0 {
			var whole []Event
			if !shared && len(matched[j]) == len(events) {
				whole = events
			}
			r.enqueue(matched[j], whole)
		}
	}
	return nil
}

func (b *LocalBus) release(n int) {
	b.mu.Lock()
	b.inflight -= n
	close(b.space)
	b.space = make(chan struct{})
	b.mu.Unlock()
}

// Close stops accepting events, lets each route deliver what it holds until
// ctx ends, and closes the sinks.
func (b *LocalBus) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	var errs []error
	for _, r := range b.routes {
		r.mu.Lock()
		idle := len(r.queue) == 0
		r.mu.Unlock()
		if !idle {
			select {
			case <-ctx.Done():
			case <-r.drained():
			}
		}
		close(r.stop)
		<-r.done
		if err := r.Sink.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (r *route) matches(e *Event) bool {
	if r.Match != nil && !r.Match(e) {
		return false
	}
	if len(e.Pipelines) > 0 && !slices.Contains(e.Pipelines, r.Name) {
		return false
	}
	if e.Origin != "" && e.Origin == r.System {
		if r.bus.cfg.OnOrigin != nil {
			r.bus.cfg.OnOrigin(r.System)
		}
		return false
	}
	return true
}

// enqueue queues the route's events; whole, when set, is the Publish's
// events, the same as events and matched by no other route.
func (r *route) enqueue(events []*Event, whole []Event) {
	r.mu.Lock()
	if whole != nil {
		r.spans = append(r.spans, span{first: r.head + len(r.queue), events: whole})
	}
	r.queue = append(r.queue, events...)
	r.depth.Set(float64(len(r.queue)))
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// drained is closed once the route's queue is empty.
func (r *route) drained() <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		for {
			r.mu.Lock()
			empty := len(r.queue) == 0
			r.mu.Unlock()
			if empty {
				return
			}
			select {
			case <-r.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return ch
}

// flight is a batch handed to the sink: its events in the route's queue
// and the Write's outcome.
type flight struct {
	taken   []*Event
	batch   []Event // a copy of taken, or part of a span's events (spanned)
	spanned bool
	done    chan bool // false: closed while the sink was failing
}

// within returns the n events at queue position first when one span
// holds them all, nil otherwise. r.mu is held.
func (r *route) within(first, n int) []Event {
	for _, s := range r.spans {
		if s.first <= first && first+n <= s.first+len(s.events) {
			i := first - s.first
			return s.events[i : i+n : i+n]
		}
		if s.first > first {
			break
		}
	}
	return nil
}

func (r *route) run() {
	defer close(r.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-r.stop
		cancel()
	}()
	size := r.bus.cfg.BatchSize
	if b, ok := r.Sink.(Batcher); ok && b.MaxBatch() > 0 {
		size = b.MaxBatch()
	}
	// An Overlapping sink gets the next batches while it still writes one.
	window := WriteWindow(r.Sink)
	var flights []*flight
	var spare [][]Event
	defer func() {
		for _, f := range flights {
			<-f.done
		}
	}()
	done := ctx.Done()
	for {
		if done == nil && len(flights) == 0 {
			return
		}
		if len(flights) < window && done != nil {
			r.mu.Lock()
			off := 0
			for _, f := range flights {
				off += len(f.taken)
			}
			n := min(len(r.queue)-off, size)
			taken := r.queue[off : off+n : off+n]
			var spanned []Event
			if n > 0 {
				spanned = r.within(r.head+off, n)
			}
			r.mu.Unlock()
			if n > 0 {
				f := &flight{taken: taken, done: make(chan bool, 1)}
				switch k := len(spare); {
				case spanned != nil:
					// The events as published: the bus owns them
					// (Publisher), and no other route reads them.
					f.batch, f.spanned = spanned, true
				case k > 0:
					f.batch, spare = spare[k-1][:0], spare[:k-1]
				default:
					f.batch = make([]Event, 0, n)
				}
				if !f.spanned {
					for _, e := range taken {
						f.batch = append(f.batch, *e)
					}
				}
				flights = append(flights, f)
				go func() { f.done <- r.write(ctx, f.batch) }()
				continue
			}
		}
		var wake <-chan struct{}
		if len(flights) < window && done != nil {
			wake = r.wake
		}
		var oldest chan bool
		if len(flights) > 0 {
			oldest = flights[0].done
		}
		select {
		case <-wake:
			continue
		case ok := <-oldest:
			if !ok {
				// Closed while the sink was failing: not acknowledged. Its
				// outcome is taken; the deferred wait is for the others.
				flights = flights[1:]
				return
			}
		case <-done:
			if len(flights) == 0 {
				return
			}
			done = nil // the flights end with ctx
			continue
		}
		f := flights[0]
		flights = flights[1:]
		for _, e := range f.taken {
			e.Settle(nil)
		}
		n := len(f.taken)
		r.mu.Lock()
		clear(r.queue[:n]) // taken shares this array
		r.queue = r.queue[n:]
		r.head += n
		k := 0
		for k < len(r.spans) && r.spans[k].first+len(r.spans[k].events) <= r.head {
			r.spans[k] = span{}
			k++
		}
		r.spans = r.spans[k:]
		r.depth.Set(float64(len(r.queue)))
		r.mu.Unlock()
		if !f.spanned {
			clear(f.batch)
			spare = append(spare, f.batch)
		}
		r.writes.Add(float64(n))
		r.bus.release(n)
	}
}

// write delivers a batch, retrying with backoff and jitter until it
// succeeds or ctx ends.
func (r *route) write(ctx context.Context, batch []Event) bool {
	backoff := Backoff{Min: 100 * time.Millisecond, Max: 30 * time.Second}
	for {
		err := r.Sink.Write(ctx, batch)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		r.retries.Inc()
		r.bus.log.Warn().Err(err).Str("route", r.Name).Int("events", len(batch)).Msg("sink write failed; retrying")
		if !Sleep(ctx, backoff.Next()) {
			return false
		}
	}
}

// fanout acknowledges its parent once every route delivered the event.
type fanout struct {
	parent  Acker
	pending atomic.Int32
	failed  atomic.Pointer[error]
}

func (f *fanout) Ack(err error) {
	if err != nil {
		failed := err // only a failure's address is taken: no allocation an ack
		f.failed.CompareAndSwap(nil, &failed)
	}
	if f.pending.Add(-1) == 0 {
		if p := f.failed.Load(); p != nil {
			f.parent.Ack(*p)
			return
		}
		f.parent.Ack(nil)
	}
}
