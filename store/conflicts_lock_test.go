package store

import (
	"context"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/conflict"
	"github.com/jackc/pgx/v5"
)

// lockingConn is a connection of its own, in a transaction, standing for
// another cdcd path or the application.
func lockingConn(t *testing.T, url string, settings ...string) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	for _, s := range settings {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(ctx) })
	return tx
}

func mustExec(t *testing.T, tx pgx.Tx, sql string, args ...any) {
	t.Helper()
	if _, err := tx.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// waitBlocked waits until a backend of the database waits for a lock.
func waitBlocked(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for queryInt(t, url, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no backend waits for a lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func deadlocks(t *testing.T, url string) int64 {
	t.Helper()
	return queryInt(t, url, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`)
}

// conflictOnALinkedRecord stores contact 1, linked to the system's record
// 512, with an escalated conflict on its name.
func conflictOnALinkedRecord(t *testing.T, url string) int64 {
	t.Helper()
	execSQL(t, url, `CREATE TABLE contacts (id int PRIMARY KEY, email text, first_name text, visits int)`)
	execSQL(t, url, `INSERT INTO contacts VALUES (1, 'a@x', 'Ann', 3)`)
	execSQL(t, url, `INSERT INTO cdcd.links (system, object, local_table, local_key, external_id, base, updated_at)
		VALUES ('crm', 'contacts', 'public.contacts', '{"id": 1}', '512', '{"name": "Ada"}', now())`)
	id := openConflict(t, url)
	execSQL(t, url, `UPDATE cdcd.conflicts SET remote_at = now() WHERE id = $1`, id)
	return id
}

// TestResolveConflictLocksInTheApplyOrder: the inbound apply path locks a
// record's link, then its open conflict, then the local row; a resolution
// running meanwhile waits for it instead of deadlocking with it.
func TestResolveConflictLocksInTheApplyOrder(t *testing.T) {
	t.Parallel()
	s, url := openStore(t)
	ctx := context.Background()
	id := conflictOnALinkedRecord(t, url)
	before := deadlocks(t, url)

	apply := lockingConn(t, url)
	mustExec(t, apply, `SELECT 1 FROM cdcd.links WHERE system = 'crm' AND object = 'contacts' AND external_id = '512' FOR UPDATE`)
	resolved := make(chan error, 1)
	go func() {
		_, err := s.ResolveConflict(ctx, id, conflict.ChoiceRemote, nil, "alice")
		resolved <- err
	}()
	waitBlocked(t, url)
	// The change joins the open conflict, and reads the local row.
	mustExec(t, apply, `UPDATE cdcd.conflicts SET remote = remote || '{"name": "Cy"}' WHERE system = 'crm' AND object = 'contacts'
		AND external_id = '512' AND status <> 'resolved'`)
	mustExec(t, apply, `SELECT 1 FROM contacts WHERE id = 1 FOR UPDATE`)
	if err := apply.Commit(ctx); err != nil {
		t.Fatalf("the apply path's transaction: %v", err)
	}
	if err := <-resolved; err != nil {
		t.Fatalf("ResolveConflict: %v", err)
	}
	if name := queryText(t, url, `SELECT first_name FROM contacts WHERE id = 1`); name != "Cy" {
		t.Fatalf("local name %q after resolving for the remote side, which the change joined: want Cy", name)
	}
	if n := deadlocks(t, url) - before; n != 0 {
		t.Fatalf("%d deadlocks", n)
	}
}

// TestResolveConflictRetriesADeadlock: a resolution that Postgres picks as
// the victim of a deadlock (here with a transaction that locks the local
// row, then the conflict) runs again and succeeds.
func TestResolveConflictRetriesADeadlock(t *testing.T) {
	t.Parallel()
	s, url := openStore(t)
	ctx := context.Background()
	id := conflictOnALinkedRecord(t, url)
	before := deadlocks(t, url)

	// The other side waits long before checking for a deadlock, so the
	// resolution (checking after the default 1s) is the victim.
	other := lockingConn(t, url, `SET deadlock_timeout = '30s'`)
	mustExec(t, other, `UPDATE contacts SET visits = visits + 1 WHERE id = 1`)
	resolved := make(chan error, 1)
	go func() {
		_, err := s.ResolveConflict(ctx, id, conflict.ChoiceRemote, nil, "alice")
		resolved <- err
	}()
	waitBlocked(t, url)
	mustExec(t, other, `SELECT 1 FROM cdcd.conflicts WHERE id = $1 FOR UPDATE`, id)
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-resolved; err != nil {
		t.Fatalf("ResolveConflict after a deadlock: %v", err)
	}
	if n := deadlocks(t, url) - before; n != 1 {
		t.Fatalf("%d deadlocks, want the 1 provoked", n)
	}
	if name, visits := queryText(t, url, `SELECT first_name FROM contacts WHERE id = 1`),
		queryInt(t, url, `SELECT visits FROM contacts WHERE id = 1`); name != "Bea" || visits != 4 {
		t.Fatalf("contact 1: name %q visits %d, want Bea and 4", name, visits)
	}
	if c, err := s.GetConflict(ctx, id); err != nil || c.Status != ConflictResolved || c.ResolvedBy != "alice" {
		t.Fatalf("conflict after the retry: %+v, %v", c, err)
	}
}
