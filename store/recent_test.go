package store

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/syncstate"
)

// Writes remembered by one process are read by another within the
// window, newest first, at most four per record; older ones are pruned.
func TestRecentWritesAreSharedAndPruned(t *testing.T) {
	s, url := openStore(t)
	ctx := context.Background()
	for i := range 6 {
		l := link(`{"id":1}`, "901")
		l.Base = map[string]any{"n": i}
		other := link(`{"id":2}`, "902") // no base: no write
		if err := s.RecentWrites().Remember(ctx, []syncstate.Link{l, other}); err != nil {
			t.Fatal(err)
		}
	}
	execSQL(t, url, `INSERT INTO cdcd.recent_writes (system, object, external_id, fields, written_at)
		VALUES ('hubspot', 'contacts', '903', '{"n": 0}', now() - interval '16 minutes')`)

	// another process: its own connection, its own transaction
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	w, err := ReadRecentWrites(ctx, tx, "hubspot", "contacts", "901")
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != recentPerRecord || w[0]["n"] == nil || w[0]["n"].(interface{ String() string }).String() != "5" {
		t.Fatalf("writes %v, want the last %d, newest (n=5) first", w, recentPerRecord)
	}
	if w, _ := ReadRecentWrites(ctx, tx, "hubspot", "contacts", "902"); len(w) != 0 {
		t.Fatalf("a link without a base remembered %v", w)
	}
	if w, _ := ReadRecentWrites(ctx, tx, "hubspot", "contacts", "903"); len(w) != 0 {
		t.Fatalf("a write older than the window read back: %v", w)
	}
	if n, err := s.PruneRecentWrites(ctx, RecentWindow); err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want the 1 older than the window", n, err)
	}
}
