package delivery_test

import (
	"testing"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
)

// A Writer that takes more in one call than the bus's batch gets bus
// batches of its size, so that one call (one transaction, for the
// Postgres writer) takes a whole bus batch; others keep the bus's batch.
func TestPipelineMaxBatchFollowsALargeWriterBatch(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ writer, want int }{
		{0, 0}, {100, 0}, {cdc.DefaultBatchSize, 0}, {1000, 1000},
	} {
		v := newVendor()
		v.batch = c.writer
		h := newHarness(t, delivery.PipelineConfig{}, v)
		var sink cdc.Sink = h.p
		b, ok := sink.(cdc.Batcher)
		if !ok {
			t.Fatal("the pipeline is no cdc.Batcher")
		}
		if got := b.MaxBatch(); got != c.want {
			t.Errorf("writer batch %d: pipeline MaxBatch %d, want %d", c.writer, got, c.want)
		}
	}
}
