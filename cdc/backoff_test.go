package cdc

import (
	"context"
	"testing"
	"time"
)

func TestBackoffDoublesWithinJitterUpToMax(t *testing.T) {
	t.Parallel()
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for round := range 2 {
		for n, ceil := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
			ceil *= time.Millisecond
			if d := b.Next(); d < ceil/2 || d > ceil {
				t.Fatalf("round %d, delay %d: %v outside [%v, %v]", round, n+1, d, ceil/2, ceil)
			}
		}
		b.Reset()
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Error("Sleep reported an hour passed after its context ended")
	}
	if !Sleep(context.Background(), time.Millisecond) {
		t.Error("Sleep of 1ms did not report it passed")
	}
}
