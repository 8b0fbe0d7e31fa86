package cdc

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff spaces the retries of a failing operation: the n-th delay is
// drawn uniformly from [d/2, d], where d is Min·2^(n-1) capped at Max. The
// jitter keeps processes that failed together from retrying together. The
// zero Backoff retries at once; it is not safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration
	next     time.Duration
}

// Next returns the delay before the next retry.
func (b *Backoff) Next() time.Duration {
	if b.next == 0 {
		b.next = b.Min
	}
	d := b.next
	b.next = min(b.next*2, b.Max)
	return Jitter(d)
}

// Reset makes the next delay Min's again, as after a success.
func (b *Backoff) Reset() { b.next = 0 }

// Jitter is a delay drawn uniformly from [d/2, d].
func Jitter(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) }

// Sleep waits for d, or until ctx ends; it reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
