package backfill

import (
	"context"
	"testing"

	"github.com/cdcd-dev/cdcd/cdc/pgwal"
)

// A chunk whose high watermark could not be written is closed: the
// merger tracks no change for it, and a stream that sees the watermark
// anyway (written, its answer lost) does not wait at it for good.
func TestAChunkWhoseHighWatermarkFailedIsClosed(t *testing.T) {
	ctx := context.Background()
	wm, err := pgwal.Connect(ctx, pg.DB(t, "backfill"))
	if err != nil {
		t.Fatal(err)
	}
	wm.Close(ctx) // writing a watermark on it fails
	h := &Handler{Merger: NewMerger()}
	var c *chunk
	read := func([]string, int) (*chunkRead, error) {
		c = h.Merger.openChunk("1.a.1", "public", "items", []string{"p"})
		return &chunkRead{c: c, n: 1}, nil
	}
	a := h.startAhead(ctx, wm, read, nil, 10)
	defer a.stop()
	s, _ := a.next(ctx)
	if s.err == nil {
		t.Fatal("the high watermark was written on a closed connection")
	}
	if n := h.Merger.open.Load(); n != 0 {
		t.Errorf("%d chunks open after the high watermark failed, want none", n)
	}
	select {
	case <-c.gate:
	default:
		t.Error("the chunk's gate is shut: a stream at its high watermark would wait for good")
	}
}
