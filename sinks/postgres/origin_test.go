package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/cdc/pgwal"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// The key property: a change applied for a system reaches the capture
// reader stamped with that system as its origin, whether the role may use
// replication origins (superuser) or not (a plain role tags with a
// message), so the router never echoes it back; a local change has none.
func TestAppliedChangesCarryTheOrigin(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", contactsDDL+`;
		CREATE ROLE plain LOGIN;
		GRANT SELECT, INSERT, UPDATE, DELETE ON contacts TO plain;
		GRANT USAGE ON SEQUENCE contacts_id_seq TO plain`)
	// cdcd's migrations ran as the owner; the plain role may use the tables.
	migrate(t, url)
	pg.Exec(t, "app", `GRANT USAGE ON SCHEMA cdcd TO plain;
		GRANT SELECT, INSERT, UPDATE, DELETE ON cdcd.apply_state TO plain`)
	plainURL := strings.Replace(url, "postgres@", "plain@", 1)

	col := &cdctest.Collector{}
	table, err := pgwal.ParseTable("public.contacts")
	if err != nil {
		t.Fatal(err)
	}
	cfg := pgwal.Config{URL: url, Slot: "cdcd", Publication: "cdcd", Tables: []pgwal.Table{table}, StatusInterval: 100 * time.Millisecond}
	r, err := pgwal.NewReader(cfg, col, zerolog.New(zerolog.NewTestWriter(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	cdctest.Eventually(t, 30*time.Second, "streaming", r.Streaming)

	shop := newWriter(t, "shop", testConfig(plainURL))
	write(t, shop, rec(cdc.OpCreate, 1, "s1", map[string]any{"email": "shop@x", "name": "S"}))
	write(t, shop, rec(cdc.OpDelete, 2, "s2", map[string]any{"email": "shop@x"}))
	if shop.UsesReplicationOrigin() {
		t.Error("plain role: writer uses a replication origin, want a logical message")
	}
	crm := newWriter(t, "crm", testConfig(url))
	write(t, crm, rec(cdc.OpCreate, 1, "c1", map[string]any{"email": "crm@x", "name": "C"}))
	write(t, crm, rec(cdc.OpUpdate, 2, "c2", map[string]any{"email": "crm@x", "name": "C2"}))
	write(t, crm, rec(cdc.OpDelete, 3, "c3", map[string]any{"email": "crm@x"}))
	if !crm.UsesReplicationOrigin() {
		t.Error("superuser: writer uses a logical message, want a replication origin")
	}
	// Postgres lets one session at a time use an origin, and the writer
	// keeps its session between Writes: while it holds the origin,
	// another writer of the system (another cdcd) tags with a message.
	other := newWriter(t, "crm", testConfig(url))
	write(t, other, rec(cdc.OpCreate, 4, "c4", map[string]any{"email": "busy@x", "name": "B"}))
	holder, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.Background())
	if _, err := holder.Exec(context.Background(), "SELECT pg_replication_origin_session_setup('cdcd:crm')"); !hasCode(err, codeObjectInUse) {
		t.Errorf("origin set up between Writes: %v; want it held by the first writer", err)
	}
	other.Close(context.Background())
	crm.Close(context.Background())
	if _, err := holder.Exec(context.Background(), "SELECT pg_replication_origin_session_setup('cdcd:crm')"); err != nil {
		t.Fatalf("after Close the origin is still held: %v", err)
	}
	pg.Exec(t, "app", `INSERT INTO contacts (email, name) VALUES ('local@x', 'L')`)

	got := col.WaitFor(t, 30*time.Second, "7 events", func(es []cdc.Event) bool { return len(es) >= 7 })
	want := []struct {
		op     cdc.Op
		origin string
	}{
		{cdc.OpCreate, "shop"}, {cdc.OpDelete, "shop"},
		{cdc.OpCreate, "crm"}, {cdc.OpUpdate, "crm"}, {cdc.OpDelete, "crm"},
		{cdc.OpCreate, "crm"}, // origin busy: tagged by message
		{cdc.OpCreate, ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Op != w.op || got[i].Origin != w.origin {
			t.Errorf("event %d: op %c origin %q, want %c %q", i, got[i].Op, got[i].Origin, w.op, w.origin)
		}
	}
}

// The connection a writer keeps with the origin's session may die while
// it idles (a restart, an idle timeout): the next Write finds it dead,
// sets the session up on a new connection and applies. A Write that
// fails gives the session up, and the one after sets it up again.
func TestHeldOriginSessionRecovers(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", contactsDDL)
	migrate(t, url)
	w := newWriter(t, "crm", testConfig(url))
	write(t, w, rec(cdc.OpCreate, 1, "c1", map[string]any{"email": "a@x", "name": "A"}))
	// killHeld ends the server process of the kept connection and waits
	// until it is gone.
	killHeld := func(idle bool) {
		t.Helper()
		held := <-w.session
		if held == nil {
			w.session <- held
			t.Fatal("no connection kept with the origin's session")
		}
		if idle {
			held.used = time.Time{} // idle long enough to be checked
		}
		pid := held.conn.Conn().PgConn().PID()
		w.session <- held
		pg.Exec(t, "app", fmt.Sprintf("SELECT pg_terminate_backend(%d)", pid))
		cdctest.Eventually(t, 30*time.Second, "the backend ended", func() bool {
			return queryCount(t, url, fmt.Sprintf("SELECT count(*) FROM pg_stat_activity WHERE pid = %d", pid)) == 0
		})
	}
	killHeld(true)
	write(t, w, rec(cdc.OpUpdate, 2, "c2", map[string]any{"email": "a@x", "name": "B"}))
	if got := row(t, url, "a@x")["name"]; got != "B" || !w.UsesReplicationOrigin() {
		t.Fatalf("after the idle connection died: name %s, origin %v", got, w.UsesReplicationOrigin())
	}
	killHeld(false)
	if _, err := w.Write(context.Background(), []syncapi.Record{rec(cdc.OpUpdate, 3, "c3", map[string]any{"email": "a@x", "name": "C"})}); err == nil {
		t.Fatal("a Write on a connection that died under it succeeded")
	}
	write(t, w, rec(cdc.OpUpdate, 3, "c3", map[string]any{"email": "a@x", "name": "C"}))
	if got := row(t, url, "a@x")["name"]; got != "C" {
		t.Fatalf("after a failed Write: name %s, want C", got)
	}
	held := <-w.session
	w.session <- held
	if held == nil {
		t.Fatal("the session is not kept after the Write that set it up again")
	}
}
