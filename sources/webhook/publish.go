package webhook

import (
	"context"
	"fmt"
	"sync"

	"github.com/cdcd-dev/cdcd/cdc"
)

// PublishAcceptor makes changes durable by publishing them on a bus that
// acknowledges each event once it is durable (the Kafka producer, acks=all:
// changes land on <prefix>.<system>.<entity>). Accept returns once every
// change was acknowledged, or with the first nack or when ctx ends.
type PublishAcceptor struct {
	Publisher cdc.Publisher
}

// Accept implements Acceptor.
func (a PublishAcceptor) Accept(ctx context.Context, system string, changes []Change) error {
	if len(changes) == 0 {
		return nil
	}
	w := &waiter{left: len(changes), done: make(chan struct{})}
	events := make([]cdc.Event, len(changes))
	for i := range changes {
		events[i] = changes[i].Event
		events[i].Ack = w
	}
	if err := a.Publisher.Publish(ctx, events); err != nil {
		return fmt.Errorf("publish %d changes from %s: %w", len(events), system, err)
	}
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
		return fmt.Errorf("wait for the bus to acknowledge %d changes from %s: %w", len(events), system, ctx.Err())
	}
}

// waiter counts acknowledgements; the first error ends the wait.
type waiter struct {
	mu     sync.Mutex
	left   int
	err    error
	closed bool
	done   chan struct{}
}

func (w *waiter) Ack(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.left--
	if err != nil || w.left == 0 {
		w.err, w.closed = err, true
		close(w.done)
	}
}
