package delivery

import (
	"errors"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

func TestBackoffBounds(t *testing.T) {
	t.Parallel()
	p := &Pipeline{cfg: PipelineConfig{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}}
	for attempt := 1; attempt <= 100; attempt++ {
		ceil := min(100*time.Millisecond<<min(attempt-1, 20), time.Second)
		for range 50 {
			d := p.backoff(attempt, errors.New("x"))
			if d < 100*time.Millisecond || d > ceil {
				t.Fatalf("attempt %d: backoff %v outside [100ms, %v]", attempt, d, ceil)
			}
		}
	}
	if d := p.backoff(1, cdc.RetryAfter(errors.New("429"), time.Hour)); d != time.Hour {
		t.Errorf("backoff with Retry-After 1h = %v", d)
	}
	if d := p.backoff(9, cdc.RetryAfter(errors.New("429"), time.Millisecond)); d < 100*time.Millisecond {
		t.Errorf("a short Retry-After shortened the backoff to %v", d)
	}
}
