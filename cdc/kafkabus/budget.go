package kafkabus

import (
	"context"
	"sync"
)

// budget bounds the events and bytes in flight. A request larger than the
// whole budget is admitted when nothing else is in flight, so an oversized
// Publish waits for the producer to drain instead of blocking forever.
// Waiters are not served in order.
type budget struct {
	maxEvents, maxBytes int64

	mu      sync.Mutex
	events  int64
	bytes   int64
	wake    chan struct{} // closed when room frees up while someone waits
	waiting bool
}

func newBudget(maxEvents, maxBytes int64) *budget {
	return &budget{maxEvents: maxEvents, maxBytes: maxBytes, wake: make(chan struct{})}
}

// acquire takes n events of size bytes, waiting until they fit or ctx ends.
// It returns the events in flight after taking them.
func (b *budget) acquire(ctx context.Context, n, size int64) (int64, error) {
	for {
		b.mu.Lock()
		if b.events == 0 || b.events+n <= b.maxEvents && b.bytes+size <= b.maxBytes {
			b.events += n
			b.bytes += size
			inFlight := b.events
			b.mu.Unlock()
			return inFlight, nil
		}
		b.waiting = true
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// release returns n events of size bytes and the events still in flight.
func (b *budget) release(n, size int64) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events -= n
	b.bytes -= size
	if b.waiting {
		close(b.wake)
		b.wake = make(chan struct{})
		b.waiting = false
	}
	return b.events
}

// inFlight returns the events in flight.
func (b *budget) inFlight() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.events
}
