package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/syncstate"
)

func TestLinkBackWritesExternalIDUnderTheSystemsOrigin(t *testing.T) {
	s, url := openStore(t)
	ctx := context.Background()
	execSQL(t, url, `CREATE TABLE public.contacts (id bigint PRIMARY KEY, email text, hubspot_id text)`)
	execSQL(t, url, `INSERT INTO public.contacts VALUES (7, 'a@x', NULL), (8, 'b@x', NULL)`)
	execSQL(t, url, `SELECT pg_create_logical_replication_slot('probe', 'test_decoding')`)

	links := s.LinkBack(s.Links(), "hubspot_id")
	link := syncstate.Link{System: "hubspot", Object: "contacts", Table: "public.contacts", Key: `{"id":7}`,
		ExternalID: "901", Base: map[string]any{"email": "a@x"}}
	if err := links.Put(ctx, []syncstate.Link{link}); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, url, `SELECT coalesce(hubspot_id, '') FROM public.contacts WHERE id = 7`); got != "901" {
		t.Fatalf("hubspot_id = %q, want 901", got)
	}
	if got := queryString(t, url, `SELECT coalesce(hubspot_id, '') FROM public.contacts WHERE id = 8`); got != "" {
		t.Fatalf("another row was written: %q", got)
	}
	stored, err := s.Links().Get(ctx, []syncstate.LinkRef{{System: "hubspot", Object: "contacts", Table: "public.contacts", Key: `{"id":7}`}})
	if err != nil || len(stored) != 1 {
		t.Fatalf("link not stored: %v %v", stored, err)
	}

	// The update's transaction carries the origin message before the change.
	changes := slotChanges(t, url, "probe")
	msg := strings.Index(changes, "prefix: cdcd.origin, sz: 7 content:hubspot")
	upd := strings.Index(changes, "table public.contacts: UPDATE")
	if msg < 0 || upd < 0 || msg > upd {
		t.Fatalf("want the origin message before the update, got:\n%s", changes)
	}

	// Storing the same link again changes nothing in the table.
	if err := links.Put(ctx, []syncstate.Link{link}); err != nil {
		t.Fatal(err)
	}
	if again := slotChanges(t, url, "probe"); strings.Contains(again, "table public.contacts:") || strings.Contains(again, "cdcd.origin") {
		t.Fatalf("a repeated link wrote the row again:\n%s", again)
	}

	// A deleted record's link (Base nil) writes nothing back.
	link.Key, link.ExternalID, link.Base = `{"id":8}`, "902", nil
	if err := links.Put(ctx, []syncstate.Link{link}); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, url, `SELECT coalesce(hubspot_id, '') FROM public.contacts WHERE id = 8`); got != "" {
		t.Fatalf("a deleted record got an id written back: %q", got)
	}
}

func TestLinkBackReportsAMissingColumn(t *testing.T) {
	s, url := openStore(t)
	execSQL(t, url, `CREATE TABLE public.contacts (id bigint PRIMARY KEY)`)
	err := s.LinkBack(s.Links(), "hubspot_id").Put(context.Background(), []syncstate.Link{{
		System: "hubspot", Object: "contacts", Table: "public.contacts", Key: `{"id":1}`, ExternalID: "9", Base: map[string]any{}}})
	if err == nil || !strings.Contains(err.Error(), "public.contacts.hubspot_id") {
		t.Fatalf("Put = %v, want an error naming the column", err)
	}
}

func queryString(t *testing.T, url, sql string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// slotChanges consumes and returns what a test_decoding slot saw.
func slotChanges(t *testing.T, url, slot string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT data FROM pg_logical_slot_get_changes($1, NULL, NULL)`, slot)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// Regression: since a group's bookkeeping became one transaction (InTx),
// the link-back ran in a transaction of its own on a second connection
// while InTx's held the first: as many pipelines settling at once as the
// pool has connections (4 by default on a 2-core host) waited for each
// other forever, and a group rolled back (its dead letters not stored, a
// crash before the commit) left the ids written back without their links.
// Within InTx the link-back is now part of its transaction.
func TestLinkBackWithinInTx(t *testing.T) {
	url := newDB(t)
	s, ctx := oneConnection(t, url)
	execSQL(t, url, `CREATE TABLE public.contacts (id bigint PRIMARY KEY, hubspot_id text)`)
	execSQL(t, url, `INSERT INTO public.contacts VALUES (7, NULL), (8, NULL)`)
	execSQL(t, url, `SELECT pg_create_logical_replication_slot('probe_intx', 'test_decoding')`)
	links := s.LinkBack(s.Links(), "hubspot_id")
	link := func(id int, ext string) syncstate.Link {
		return syncstate.Link{System: "hubspot", Object: "contacts", Table: "public.contacts",
			Key: fmt.Sprintf(`{"id":%d}`, id), ExternalID: ext, Base: map[string]any{}}
	}

	// A rolled-back group writes no id back.
	rolledBack := errors.New("the group is stored again")
	err := s.InTx(ctx, func(ctx context.Context) error {
		if err := links.Put(ctx, []syncstate.Link{link(8, "902")}); err != nil {
			return err
		}
		return rolledBack
	})
	if !errors.Is(err, rolledBack) {
		t.Fatalf("InTx = %v, want the group's error", err)
	}
	if got := queryString(t, url, `SELECT coalesce(hubspot_id, '') FROM public.contacts WHERE id = 8`); got != "" {
		t.Fatalf("a rolled-back group's id was written back: %q", got)
	}

	// A committed one does, under the system's origin, with one connection.
	if err := s.InTx(ctx, func(ctx context.Context) error { return links.Put(ctx, []syncstate.Link{link(7, "901")}) }); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, url, `SELECT coalesce(hubspot_id, '') FROM public.contacts WHERE id = 7`); got != "901" {
		t.Fatalf("hubspot_id = %q, want 901", got)
	}
	changes := slotChanges(t, url, "probe_intx")
	msg := strings.Index(changes, "prefix: cdcd.origin, sz: 7 content:hubspot")
	upd := strings.Index(changes, "table public.contacts: UPDATE")
	if msg < 0 || upd < 0 || msg > upd {
		t.Fatalf("want the origin message before the update, got:\n%s", changes)
	}
}
