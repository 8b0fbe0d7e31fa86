package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncstate"
)

func outcomes(n int, at time.Time) []syncstate.Outcome {
	out := make([]syncstate.Outcome, n)
	for i := range out {
		out[i] = syncstate.Outcome{
			At: at, Pipeline: "contacts-to-hubspot", System: "hubspot", Object: "contacts",
			Key: fmt.Sprintf(`{"id":%d}`, i), EventID: fmt.Sprintf("0/16B3748/%d", i), Op: cdc.OpCreate,
			Status: syncstate.StatusDelivered, Attempt: 1, Latency: 1500 * time.Microsecond,
		}
	}
	return out
}

func TestAuditRecordAndPrune(t *testing.T) {
	s, url := openStore(t)
	ctx := context.Background()
	audit := s.Audit()

	failed := outcomes(1, time.Time{})
	failed[0].Status, failed[0].Attempt, failed[0].Error = syncstate.StatusRetried, 3, "503 Service Unavailable"
	if err := audit.Record(ctx, failed); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	if err := audit.Record(ctx, outcomes(2*pruneChunk+10, old)); err != nil {
		t.Fatal(err)
	}
	if err := audit.Record(ctx, outcomes(20, time.Now().Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, url, "SELECT count(*) FROM cdcd.sync_events"); n != 2*pruneChunk+31 {
		t.Fatalf("%d audit events, want %d", n, 2*pruneChunk+31)
	}
	if n := queryInt(t, url, `SELECT count(*) FROM cdcd.sync_events
		WHERE status = 'retried' AND attempt = 3 AND error = '503 Service Unavailable' AND op = 'c'
		  AND latency_ms = 1.5 AND at > now() - interval '1 minute' AND local_key = '{"id":0}'`); n != 1 {
		t.Fatal("the retried outcome was not stored as recorded")
	}
	if n := queryInt(t, url, "SELECT count(*) FROM cdcd.sync_events WHERE error IS NULL AND status = 'delivered'"); n != 2*pruneChunk+30 {
		t.Fatalf("%d delivered events without error, want %d", n, 2*pruneChunk+30)
	}

	deleted, err := s.PruneAudit(ctx, 24*time.Hour)
	if err != nil || deleted != 2*pruneChunk+10 {
		t.Fatalf("prune: %d, %v; want %d", deleted, err, 2*pruneChunk+10)
	}
	if n := queryInt(t, url, "SELECT count(*) FROM cdcd.sync_events"); n != 21 {
		t.Fatalf("%d audit events after prune, want 21", n)
	}
}

func TestRunRetentionPrunesUntilStopped(t *testing.T) {
	s, url := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Audit().Record(ctx, outcomes(5, time.Now().Add(-2*time.Hour))); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.RunRetention(ctx, time.Hour, 50*time.Millisecond) }()
	deadline := time.Now().Add(10 * time.Second)
	for queryInt(t, url, "SELECT count(*) FROM cdcd.sync_events") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("old audit events not pruned within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Later events age past keep and go at a later tick.
	if err := s.Audit().Record(ctx, outcomes(3, time.Now().Add(-time.Hour-time.Second))); err != nil {
		t.Fatal(err)
	}
	for queryInt(t, url, "SELECT count(*) FROM cdcd.sync_events") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("audit events recorded later not pruned within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunRetention returned %v after cancel, want nil", err)
	}
}

// BenchmarkAuditRecord reports rows/s appended to cdcd.sync_events for the
// batch sizes a pipeline produces.
func BenchmarkAuditRecord(b *testing.B) {
	s, _ := openStore(b)
	ctx := context.Background()
	for _, size := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			batch := outcomes(size, time.Now())
			b.ResetTimer()
			for b.Loop() {
				if err := s.Audit().Record(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
