package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncstate"
	"github.com/jackc/pgx/v5"
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
			b.ReportAllocs()
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

// Record stores each outcome as the plain values it was built from did
// (a time, strings, a float, a nil *string for no error), written here
// with the same COPY into a copy of the table.
func TestAuditRecordStoresThePlainValues(t *testing.T) {
	s, url := openStore(t)
	ctx := context.Background()
	rec := []syncstate.Outcome{
		{Pipeline: "p", System: "hubspot", Object: "contacts", Key: `{"id":1}`, EventID: "0/1/1", Op: cdc.OpCreate,
			Status: syncstate.StatusDelivered, Attempt: 1, Latency: 1500 * time.Microsecond},
		{At: time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.FixedZone("x", 3600)), Pipeline: "p", System: "s", Object: "o",
			Key: "bad \xff key", EventID: "nul \x00 id", Op: cdc.OpDelete, Status: syncstate.StatusRetried,
			Attempt: 300, Latency: 123456789 * time.Nanosecond, Error: "503 Service Unavailable"},
		{At: time.Unix(1, 1), Op: cdc.OpUpdate, Status: syncstate.StatusRetried, Attempt: -1, Latency: -time.Second, Error: "x"},
		{At: time.Unix(2, 0), Op: cdc.OpRead, Status: syncstate.StatusDelivered, Key: "é\n\t\\", Latency: 1},
	}
	if err := s.Audit().Record(ctx, rec); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE cdcd.sync_events_plain (LIKE cdcd.sync_events INCLUDING DEFAULTS)"); err != nil {
		t.Fatal(err)
	}
	var now time.Time
	if err := conn.QueryRow(ctx, "SELECT at FROM cdcd.sync_events WHERE pipeline = 'p' AND system = 'hubspot'").Scan(&now); err != nil {
		t.Fatal(err)
	}
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"cdcd", "sync_events_plain"}, auditColumns,
		pgx.CopyFromSlice(len(rec), func(i int) ([]any, error) {
			o := rec[i]
			at := o.At
			if at.IsZero() {
				at = now
			}
			var errText *string
			if o.Error != "" {
				errText = &o.Error
			}
			return []any{at, o.Pipeline, o.System, o.Object, storable(o.Key), storable(o.EventID), o.Op.String(), string(o.Status),
				int32(o.Attempt), float64(o.Latency) / float64(time.Millisecond), errText}, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	const cols = "at, pipeline, system, object, local_key, event_id, op, status, attempt, latency_ms, error"
	if n := queryInt(t, url, `SELECT count(*) FROM (
		(SELECT `+cols+` FROM cdcd.sync_events EXCEPT ALL SELECT `+cols+` FROM cdcd.sync_events_plain)
		UNION ALL
		(SELECT `+cols+` FROM cdcd.sync_events_plain EXCEPT ALL SELECT `+cols+` FROM cdcd.sync_events)) d`); n != 0 {
		t.Fatalf("%d rows differ from the plain values' rows", n)
	}
	if n := queryInt(t, url, "SELECT count(*) FROM cdcd.sync_events WHERE error IS NULL"); n != 2 {
		t.Fatalf("%d rows without error, want 2", n)
	}
}
