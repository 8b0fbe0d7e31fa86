package cdc

import "context"

// Sink delivers events to one external system. Write returns nil only once
// every event is durable in the target; an error means none of them may be
// considered delivered (the caller retries or dead-letters the batch).
// Delivery is at-least-once, so Write must be idempotent (upsert by
// external id, keyed by Event.ID). Events for one key arrive in order.
// Write is not called concurrently on one Sink, unless it is Overlapping.
// Write reads its events and does not change them: they may be the
// publisher's own (the in-process bus hands a route the events of a
// Publish that it alone takes as they were published).
type Sink interface {
	Write(ctx context.Context, events []Event) error
	Close(ctx context.Context) error
}

// Overlapping is a Sink whose Write of a batch may be called while the
// Writes of earlier batches still run, up to Overlap at once (the sink
// keeps per-key order across them: a Sink of the delivery engine starts
// a later batch's calls once the earlier ones' are over, and the records
// they share only once the earlier batch is durable). Any may return
// first; the caller settles a batch's events only once its Write, and
// those of every earlier batch, returned nil, and retries a failed batch
// while later ones run.
type Overlapping interface {
	Sink
	// Overlap is how many Writes may run at once; 1 or less: one.
	Overlap() int
}

// WriteWindow is how many Writes of sink may run at once.
func WriteWindow(sink Sink) int {
	if o, ok := sink.(Overlapping); ok && o.Overlap() > 1 {
		return o.Overlap()
	}
	return 1
}

// A Batcher is a Sink whose writes cost mostly per call, not per event (a
// file synced to disk on every Write): the in-process bus gives one Write
// up to MaxBatch events instead of its own batch size. Zero or less means
// the bus's.
type Batcher interface {
	MaxBatch() int
}

// A Forgetful sink reads nothing of the events a Write took once the
// Write returned: not an event, a row, a value, nor a slice of them (it
// encodes or copies what it keeps). ForgetsEvents reports whether that
// holds; a wrapper asks the sink it wraps. A sink that does not implement
// it is taken to keep its events.
//
// A backfill reuses the memory of a chunk's rows for the chunks after it,
// once every route they went to delivered them, only when every sink they
// go to forgets them (LocalBus.Forgets).
type Forgetful interface {
	ForgetsEvents() bool
}

// Forgets reports whether sink is Forgetful and forgets its events.
func Forgets(sink Sink) bool {
	f, ok := sink.(Forgetful)
	return ok && f.ForgetsEvents()
}
