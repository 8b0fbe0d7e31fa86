package delivery_test

import (
	"bytes"
	"context"
	"errors"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
)

// attemptGoroutines counts the goroutines in a Writer call's attempt.
func attemptGoroutines() int {
	var b bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
	n := 0
	for g := range bytes.SplitSeq(b.Bytes(), []byte("\n\n")) {
		if bytes.Contains(g, []byte("delivery.(*Pipeline).attempt")) {
			n++
		}
	}
	return n
}

// Regression: a Writer call whose context ended reported its end to the
// run before it said the call was over; the run, with nothing else in
// flight, returned, and the goroutine that made the call waited forever
// to say so. Not parallel: it counts the package's attempt goroutines.
func TestCancelledCallLeavesNoGoroutine(t *testing.T) {
	v := newVendor()
	v.delay = time.Hour
	h := newHarness(t, delivery.PipelineConfig{Concurrency: 1}, v)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := h.p.Write(ctx, []cdc.Event{ev(1, 0, 1, cdc.OpCreate, "a=1")}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write = %v, want context.DeadlineExceeded", err)
	}
	if err := h.p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the call's goroutine to end", func() bool { return attemptGoroutines() == 0 })
}
