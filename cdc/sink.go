package cdc

import "context"

// Sink delivers events to one external system. Write returns nil only once
// every event is durable in the target; an error means none of them may be
// considered delivered (the caller retries or dead-letters the batch).
// Delivery is at-least-once, so Write must be idempotent (upsert by
// external id, keyed by Event.ID). Events for one key arrive in order.
// Write is not called concurrently on one Sink, unless it is Overlapping.
type Sink interface {
	Write(ctx context.Context, events []Event) error
	Close(ctx context.Context) error
}

// Overlapping is a Sink whose Write of a batch may be called while the
// Write of the batch before it still runs (the sink keeps per-key order
// across them: a Sink of the delivery engine starts the later batch's
// calls once the earlier one's are over, and the records they share only
// once the earlier batch is durable). Either may return first; the
// caller settles a batch's events only once its Write, and those of
// every earlier batch, returned nil, and retries a failed batch while
// the later one runs.
type Overlapping interface {
	Sink
	// OverlapsWrites reports whether Write may be called so.
	OverlapsWrites() bool
}

// A Batcher is a Sink whose writes cost mostly per call, not per event (a
// file synced to disk on every Write): the in-process bus gives one Write
// up to MaxBatch events instead of its own batch size. Zero or less means
// the bus's.
type Batcher interface {
	MaxBatch() int
}
