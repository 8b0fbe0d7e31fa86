package cdc

import "context"

// Publisher is the capture side of the bus (Kafka, or the in-process bus).
//
// Publish takes ownership of the events and returns once they are handed
// over, usually before they are durable. Each event's Ack is settled exactly
// once: with nil when the event is durable (Kafka acknowledged it with
// acks=all, or every in-process sink delivered or dead-lettered it), or with
// an error when it cannot be made durable. Events with the same Key, in the
// same table, are made durable in the order they were published.
//
// Publish blocks while the bus is at capacity, which is how backpressure
// reaches the reader; it returns ctx.Err() if ctx ends first, having taken
// none of the events.
type Publisher interface {
	Publish(ctx context.Context, events []Event) error
	// Close flushes what was handed over, waiting at most until ctx ends.
	Close(ctx context.Context) error
}
