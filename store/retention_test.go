package store

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Retention prunes the dead letters resolved (replayed or discarded)
// longer ago than it keeps, in chunks, and keeps those resolved since and
// every letter still dead or being replayed, however old.
func TestRunRetentionPrunesResolvedDeadLetters(t *testing.T) {
	s, url := openStore(t)
	execSQL(t, url, `
		INSERT INTO cdcd.dead_letters (pipeline, system, object, local_table, local_key, event_id, op, error, failed_at, status, status_at, resolved_at)
		SELECT 'p', 'crm', 'contacts', 'public.contacts', v.key, 'e-' || v.key, 'u', 'refused', now() - interval '60 days',
			v.status, now() - v.age, CASE WHEN v.status IN ('replayed', 'discarded') THEN now() - v.age END
		FROM (VALUES ('dead', interval '50 days'), ('replay', interval '50 days'), ('replaying', interval '50 days'),
			('replayed', interval '31 days'), ('discarded', interval '45 days'), ('replayed', interval '1 day'), ('discarded', interval '29 days'))
			AS v0(status, age)
		CROSS JOIN LATERAL (SELECT v0.status, v0.age, v0.status || '-' || extract(day FROM v0.age)::text AS key) v`)
	execSQL(t, url, `
		INSERT INTO cdcd.dead_letters (pipeline, system, object, local_table, local_key, event_id, op, error, status, resolved_at)
		SELECT 'p', 'crm', 'contacts', 'public.contacts', 'bulk-' || i, 'e-bulk-' || i, 'u', 'refused', 'replayed', now() - interval '40 days'
		FROM generate_series(1, $1::int) i`, 2*pruneChunk+3)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.RunRetention(ctx, 30*24*time.Hour, 50*time.Millisecond) }()
	deadline := time.Now().Add(20 * time.Second)
	for queryInt(t, url, "SELECT count(*) FROM cdcd.dead_letters WHERE resolved_at < now() - interval '30 days'") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("dead letters resolved 30 days ago not pruned within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunRetention returned %v after cancel, want nil", err)
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, _ := conn.Query(context.Background(), `SELECT local_key FROM cdcd.dead_letters ORDER BY local_key`)
	kept, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"dead-50", "discarded-29", "replay-50", "replayed-1", "replaying-50"}
	if len(kept) != len(want) {
		t.Fatalf("kept %v, want %v", kept, want)
	}
	for i := range want {
		if kept[i] != want[i] {
			t.Fatalf("kept %v, want %v", kept, want)
		}
	}
}
