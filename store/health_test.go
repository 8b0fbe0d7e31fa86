package store

import (
	"context"
	"testing"
	"time"
)

// The latest transition of each subject is what a restart takes up, and
// pruning never deletes it, however old.
func TestHealthTransitionsLastAndPrune(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	ctx := context.Background()
	old := time.Now().Add(-48 * time.Hour)
	for i, tr := range []HealthTransition{
		{Kind: "pipeline", Name: "a", State: "degraded", Previous: "ok", Reason: "r1", At: old},
		{Kind: "pipeline", Name: "a", State: "unhealthy", Previous: "degraded", Reason: "r2", At: old.Add(time.Minute)},
		{Kind: "pipeline", Name: "b", State: "degraded", Previous: "ok", Reason: "r3", At: old, Figures: map[string]any{"backlog": 3.0}},
	} {
		if _, err := s.AddHealthTransition(ctx, tr); err != nil {
			t.Fatalf("transition %d: %v", i, err)
		}
	}
	last, err := s.LastHealthStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if last["pipeline/a"].State != "unhealthy" || last["pipeline/b"].Figures["backlog"] != 3.0 {
		t.Errorf("last states %+v, want a unhealthy, b with its figures", last)
	}
	n, err := s.PruneHealth(ctx, time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("pruned %d (%v), want 1: a's older transition", n, err)
	}
	ts, err := s.HealthTransitions(ctx, 10)
	if err != nil || len(ts) != 2 {
		t.Fatalf("left %d (%v), want each subject's latest", len(ts), err)
	}
	c, err := s.HealthCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.DeadLetters) != 0 {
		t.Errorf("dead letters %v, want none", c.DeadLetters)
	}
}
