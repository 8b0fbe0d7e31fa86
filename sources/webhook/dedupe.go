package webhook

import (
	"context"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
)

// Deduper remembers which delivery ids were accepted, per system. Seen
// reports whether id was marked; Mark records ids once their changes are
// durable. Two copies of a delivery handled at the same moment may both
// pass Seen, so deduplication narrows duplicates but does not remove them:
// downstream stays idempotent on DeliveryID. Both are safe for concurrent
// use.
type Deduper interface {
	Seen(ctx context.Context, system, id string) (bool, error)
	Mark(ctx context.Context, system string, ids []string) error
}

// Memory deduper defaults. An id held costs about 300 bytes of heap, so
// the default size bounds the cache near 20 MiB. Where a durable deduper
// (cdcd.webhook_deliveries) stands behind it, the cache only saves the
// round trip for a retry arriving soon after its delivery.
const (
	DefaultDedupeTTL  = 24 * time.Hour
	DefaultDedupeSize = 1 << 16
)

// MemoryDeduper is a Deduper holding the most recent ids in memory, each
// for a TTL. It forgets on restart and on eviction.
type MemoryDeduper struct {
	lru *expirable.LRU[dedupeKey, struct{}]
}

type dedupeKey struct{ system, id string }

// NewMemoryDeduper holds up to size ids (DefaultDedupeSize when 0) for ttl
// (DefaultDedupeTTL when 0).
func NewMemoryDeduper(size int, ttl time.Duration) *MemoryDeduper {
	if size <= 0 {
		size = DefaultDedupeSize
	}
	if ttl <= 0 {
		ttl = DefaultDedupeTTL
	}
	return &MemoryDeduper{lru: expirable.NewLRU[dedupeKey, struct{}](size, nil, ttl)}
}

// Seen implements Deduper.
func (d *MemoryDeduper) Seen(_ context.Context, system, id string) (bool, error) {
	return d.lru.Contains(dedupeKey{system, id}), nil
}

// Mark implements Deduper.
func (d *MemoryDeduper) Mark(_ context.Context, system string, ids []string) error {
	for _, id := range ids {
		d.lru.Add(dedupeKey{system, id}, struct{}{})
	}
	return nil
}
