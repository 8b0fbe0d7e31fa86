package store

import (
	"context"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/syncstate"
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

// Regression: the link of a record whose delete was delivered was kept
// forever, so a table whose records come and go grew cdcd.links without
// end. Deleted links go once older than the window, in chunks; live
// links stay, however old, and so do deleted ones within the window.
func TestPruneDeletedLinks(t *testing.T) {
	s, url := openStore(t)
	execSQL(t, url, `
		INSERT INTO cdcd.links (system, object, local_table, local_key, external_id, deleted, updated_at, deleted_at)
		SELECT 'crm', 'contacts', 'public.contacts', v.kind || '-' || i, v.kind || '-' || i, v.deleted, now() - v.age, now() - v.age
		FROM (VALUES ('gone', true, interval '2 hours'), ('recent', true, interval '10 minutes'), ('live', false, interval '30 days')) AS v(kind, deleted, age)
		CROSS JOIN LATERAL generate_series(1, CASE v.kind WHEN 'gone' THEN $1::int ELSE 3 END) i`, 2*pruneChunk+3)
	n, err := s.PruneDeletedLinks(context.Background(), time.Hour)
	if err != nil || n != 2*pruneChunk+3 {
		t.Fatalf("pruned %d, %v; want the %d deleted 2 hours ago", n, err, 2*pruneChunk+3)
	}
	if got := queryInt(t, url, "SELECT count(*) FROM cdcd.links WHERE local_key LIKE 'gone-%'"); got != 0 {
		t.Errorf("%d links deleted 2 hours ago kept", got)
	}
	if got := queryInt(t, url, "SELECT count(*) FROM cdcd.links WHERE local_key NOT LIKE 'gone-%'"); got != 6 {
		t.Errorf("%d live and recently deleted links kept, want 6", got)
	}
}

// A link is pruned by when its record's delete was delivered, not by when
// it was made: a link made long ago and deleted now stays for the window
// (it skips a change re-sent after a crash, older than the delete), and
// goes once the window is over.
func TestPruneDeletedLinksByTheirDelete(t *testing.T) {
	t.Parallel()
	s, url := openStore(t)
	ctx := context.Background()
	old := link(`{"id":1}`, "901")
	if err := s.Links().Put(ctx, []syncstate.Link{old}); err != nil {
		t.Fatal(err)
	}
	execSQL(t, url, `UPDATE cdcd.links SET deleted_at = now() - interval '2 hours', updated_at = now() - interval '2 hours'`)
	old.Deleted = true
	if err := s.Links().Put(ctx, []syncstate.Link{old}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PruneDeletedLinks(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("pruned %d, %v; want the link deleted just now kept", n, err)
	}
	execSQL(t, url, `UPDATE cdcd.links SET deleted_at = deleted_at - interval '2 hours'`)
	if n, err := s.PruneDeletedLinks(ctx, time.Hour); err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want the link deleted 2 hours ago", n, err)
	}
}
