package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/cdc/pgwal"
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
	// Postgres lets one session at a time use an origin: while another
	// holds it, the writer tags with a message instead.
	holder, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(context.Background(), "SELECT pg_replication_origin_session_setup('cdcd:crm')"); err != nil {
		t.Fatal(err)
	}
	write(t, crm, rec(cdc.OpCreate, 4, "c4", map[string]any{"email": "busy@x", "name": "B"}))
	holder.Close(context.Background())
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
