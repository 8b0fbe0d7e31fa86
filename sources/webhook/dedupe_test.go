package webhook

import (
	"context"
	"fmt"
	"runtime"
	"testing"
)

// Regression: the memory deduper held up to 1M ids for a day by default,
// about 300 MiB of heap once a busy intake had filled it, while the
// durable ids in cdcd.webhook_deliveries stand behind it; a soak showed
// cdcd's RSS growing with every webhook event. Full, it now stays within
// a few MiB and forgets the oldest ids first.
func TestMemoryDeduperIsBounded(t *testing.T) {
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d := NewMemoryDeduper(0, 0)
	const n = 2 * DefaultDedupeSize
	ids := make([]string, 0, 1000)
	for i := range n {
		ids = append(ids, fmt.Sprintf("delivery-%d", i))
		if len(ids) == cap(ids) || i == n-1 {
			if err := d.Mark(ctx, "hubspot", ids); err != nil {
				t.Fatal(err)
			}
			ids = ids[:0]
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 24<<20 {
		t.Errorf("a full memory deduper holds %d MiB of heap, want at most 24", grown>>20)
	}
	if seen, _ := d.Seen(ctx, "hubspot", "delivery-0"); seen {
		t.Error("the oldest id is still held past the deduper's size")
	}
	if seen, _ := d.Seen(ctx, "hubspot", fmt.Sprintf("delivery-%d", n-1)); !seen {
		t.Error("the latest id is forgotten")
	}
	runtime.KeepAlive(d)
}
