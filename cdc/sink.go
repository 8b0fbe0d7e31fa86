package cdc

import "context"

// Sink delivers events to one external system. Write returns nil only once
// every event is durable in the target; an error means none of them may be
// considered delivered (the caller retries or dead-letters the batch).
// Delivery is at-least-once, so Write must be idempotent (upsert by
// external id, keyed by Event.ID). Events for one key arrive in order.
// Write is not called concurrently on one Sink.
type Sink interface {
	Write(ctx context.Context, events []Event) error
	Close(ctx context.Context) error
}
