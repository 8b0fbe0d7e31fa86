package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/conflict"
	"github.com/cdcd-dev/cdcd/syncstate"
	"github.com/jackc/pgx/v5"
)

// openConflict stores an escalated conflict on contact 1's name.
func openConflict(t *testing.T, url string) int64 {
	t.Helper()
	execSQL(t, url, `INSERT INTO cdcd.conflicts (pipeline, system, object, external_id, local_table, local_key, fields, columns,
		base, local, remote, rule, status)
		VALUES ('crm-in', 'crm', 'contacts', '512', 'public.contacts', '{"id": 1}', '{name}', '{"name": "first_name", "email": "email"}',
		'{"name": "Ada", "email": "a@x"}', '{"name": "Ann", "email": "a@x"}', '{"name": "Bea", "email": "a@x"}', 'manual', 'escalated')`)
	return queryInt(t, url, `SELECT max(id) FROM cdcd.conflicts`)
}

func TestResolveConflict(t *testing.T) {
	t.Parallel()
	s, url := openStore(t)
	ctx := context.Background()
	execSQL(t, url, `CREATE TABLE contacts (id int PRIMARY KEY, email text, first_name text, visits int)`)
	execSQL(t, url, `INSERT INTO contacts VALUES (1, 'a@x', 'Ann', 3)`)
	name := func() string {
		return queryText(t, url, `SELECT first_name FROM contacts WHERE id = 1`)
	}

	id := openConflict(t, url)
	open, err := s.ListConflicts(ctx, "open", 0)
	if err != nil || len(open) != 1 || open[0].ID != id || open[0].Status != ConflictEscalated || string(open[0].Remote["name"]) != `"Bea"` {
		t.Fatalf("open conflicts %+v, %v", open, err)
	}
	c, err := s.ResolveConflict(ctx, id, conflict.ChoiceRemote, nil, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if name() != "Bea" || c.Status != ConflictResolved || c.ResolvedBy != "alice" || c.Rule != "manual:remote" || string(c.Result["name"]) != `"Bea"` || c.ResolvedAt == nil {
		t.Fatalf("resolved %+v, local name %s", c, name())
	}
	// The same resolution again changes nothing; another one is refused.
	if _, err := s.ResolveConflict(ctx, id, conflict.ChoiceRemote, nil, "bob"); err != nil {
		t.Fatalf("resolving again: %v", err)
	}
	if _, err := s.ResolveConflict(ctx, id, conflict.ChoiceLocal, nil, "bob"); !errors.Is(err, ErrResolvedOtherwise) {
		t.Fatalf("another resolution: %v", err)
	}
	if got, _ := s.GetConflict(ctx, id); got.ResolvedBy != "alice" {
		t.Fatalf("resolved again by %s", got.ResolvedBy)
	}

	id = openConflict(t, url)
	if _, err := s.ResolveConflict(ctx, id, conflict.ChoiceMerged, conflict.Values{}, "alice"); !errors.Is(err, conflict.ErrChoice) {
		t.Fatalf("merged without values: %v", err)
	}
	if _, err := s.ResolveConflict(ctx, id, conflict.ChoiceMerged, conflict.Values{"name": json.RawMessage(`"Ann-Bea"`)}, "alice"); err != nil {
		t.Fatal(err)
	}
	if name() != "Ann-Bea" {
		t.Fatalf("merged value not applied: %s", name())
	}
	if _, err := s.GetConflict(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing conflict: %v", err)
	}
	all, _ := s.ListConflicts(ctx, "", 0)
	resolved, _ := s.ListConflicts(ctx, ConflictResolved, 0)
	if len(all) != 2 || len(resolved) != 2 {
		t.Fatalf("rows kept: %d, resolved %d", len(all), len(resolved))
	}
}

func queryText(t *testing.T, url, sql string) string {
	t.Helper()
	var s string
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConflictSchedule(t *testing.T) {
	t.Parallel()
	s, url := openStore(t)
	ctx := context.Background()
	execSQL(t, url, `CREATE TABLE contacts (id int PRIMARY KEY, email text, first_name text)`)
	execSQL(t, url, `INSERT INTO contacts VALUES (1, 'a@x', 'Ann')`)
	id := openConflict(t, url)

	// Still manual: nothing decided, but an old notification is repeated.
	manual := map[string]ConflictPolicy{"crm-in": {Policy: conflict.Policy{Rules: []conflict.Rule{{Kind: conflict.KindManual}}}, Remind: time.Hour}}
	if n, err := s.ReevaluateConflicts(ctx, manual); err != nil || n != 0 {
		t.Fatalf("re-evaluated %d, %v", n, err)
	}
	execSQL(t, url, `UPDATE cdcd.conflicts SET notified_at = now() - interval '2 hours'`)
	if n, err := s.RemindConflicts(ctx, manual); err != nil || n != 1 {
		t.Fatalf("reminded %d, %v", n, err)
	}
	if n, _ := s.RemindConflicts(ctx, manual); n != 0 {
		t.Fatalf("reminded again within the interval: %d", n)
	}

	// The policy now prefers the system: the conflict is decided.
	prefer := map[string]ConflictPolicy{"crm-in": {Policy: conflict.Policy{Rules: []conflict.Rule{{Kind: conflict.KindPrefer, Side: "crm"}}}}}
	if n, err := s.ReevaluateConflicts(ctx, prefer); err != nil || n != 1 {
		t.Fatalf("re-evaluated %d, %v", n, err)
	}
	c, _ := s.GetConflict(ctx, id)
	if c.Status != ConflictResolved || c.Rule != "prefer:crm" || c.ResolvedBy != "policy" ||
		queryText(t, url, `SELECT first_name FROM contacts WHERE id = 1`) != "Bea" {
		t.Fatalf("conflict %+v", c)
	}
}

func TestLinksOfHeldRecords(t *testing.T) {
	t.Parallel()
	s, url := openStore(t)
	ctx := context.Background()
	execSQL(t, url, `CREATE TABLE contacts (id int PRIMARY KEY, email text, first_name text)`)
	execSQL(t, url, `INSERT INTO contacts VALUES (1, 'a@x', 'Ann')`)
	refs := []syncstate.LinkRef{{System: "erp", Object: "contacts", Table: "public.contacts", Key: `{"id": 1}`}}
	if err := s.Links().Put(ctx, []syncstate.Link{{System: "erp", Object: "contacts", Table: "public.contacts", Key: `{"id": 1}`, ExternalID: "E1"}}); err != nil {
		t.Fatal(err)
	}
	held := func() bool {
		links, err := s.Links().Get(ctx, refs)
		if err != nil || links[refs[0]] == nil {
			t.Fatalf("links %v, %v", links, err)
		}
		return links[refs[0]].Held
	}
	if held() {
		t.Fatal("held without a conflict")
	}
	id := openConflict(t, url) // in the CRM, but it holds the record for every system
	if !held() {
		t.Fatal("not held by an open conflict")
	}
	if _, err := s.ResolveConflict(ctx, id, conflict.ChoiceLocal, nil, "alice"); err != nil {
		t.Fatal(err)
	}
	if held() {
		t.Fatal("still held after the resolution")
	}
}

// A system change of another field that joined an open conflict (it held
// the record) reaches the local row when the conflict is decided, by a
// policy or by a person; a local change of its own is not written over.
func TestResolvingAConflictAppliesTheSystemChangesItHeld(t *testing.T) {
	t.Parallel()
	s, url := openStore(t)
	ctx := context.Background()
	execSQL(t, url, `CREATE TABLE contacts (id int PRIMARY KEY, email text, first_name text, last_name text, phone text)`)
	open := func(id int) int64 {
		execSQL(t, url, `INSERT INTO contacts VALUES ($1, 'a@x', 'Ann', 'Lovelace', 'L2')`, id)
		// Detected on name; then the system's change of lastname joined it.
		execSQL(t, url, `INSERT INTO cdcd.conflicts (pipeline, system, object, external_id, local_table, local_key, fields, columns,
			base, local, remote, local_at, remote_at, rule, status)
			VALUES ('crm-in', 'crm', 'contacts', $1::int::text, 'public.contacts', json_build_object('id', $1::int)::text, '{name}',
			'{"name": "first_name", "lastname": "last_name", "phone": "phone"}',
			'{"name": "Ada", "lastname": "Lovelace", "phone": "P0"}', '{"name": "Ann", "lastname": "Lovelace", "phone": "L1"}',
			'{"name": "Bea", "lastname": "Byron"}', now() - interval '10 minutes', now(), 'pending', 'pending')`, id)
		return queryInt(t, url, `SELECT max(id) FROM cdcd.conflicts`)
	}
	row := func(id int) string {
		return queryText(t, url, fmt.Sprintf(`SELECT concat_ws(' ', first_name, last_name, phone) FROM contacts WHERE id = %d`, id))
	}

	byPolicy := open(1)
	newest := map[string]ConflictPolicy{"crm-in": {Policy: conflict.Policy{Rules: []conflict.Rule{{Kind: conflict.KindNewest}}}}}
	if n, err := s.ReevaluateConflicts(ctx, newest); err != nil || n != 1 {
		t.Fatalf("re-evaluated %d, %v", n, err)
	}
	if c, _ := s.GetConflict(ctx, byPolicy); c.Status != ConflictResolved || c.Rule != "newest" {
		t.Fatalf("conflict %+v", c)
	}
	if got := row(1); got != "Bea Byron L2" {
		t.Fatalf("decided by the policy, the row holds %q, want %q", got, "Bea Byron L2")
	}

	byPerson := open(2)
	if _, err := s.ResolveConflict(ctx, byPerson, conflict.ChoiceLocal, nil, "alice"); err != nil {
		t.Fatal(err)
	}
	if got := row(2); got != "Ann Byron L2" {
		t.Fatalf("resolved by a person, the row holds %q, want %q", got, "Ann Byron L2")
	}
}
