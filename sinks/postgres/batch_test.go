package postgres

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/conflict"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// linkedTo returns the system's record ids linked to the contact email,
// comma-separated, and how many links there are in all.
func linkedTo(t *testing.T, url, email string) (string, int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var ids string
	var n int
	err = conn.QueryRow(ctx, `SELECT coalesce((SELECT string_agg(l.external_id, ',' ORDER BY l.external_id) FROM cdcd.links l
		JOIN contacts c ON l.local_key::jsonb = jsonb_build_object('id', c.id) WHERE c.email = $1), ''),
		(SELECT count(*) FROM cdcd.links)`, email).Scan(&ids, &n)
	if err != nil {
		t.Fatal(err)
	}
	return ids, n
}

// A Write's upserts of distinct records go through the apply steps
// together; what becomes of each is what would become of it alone: a
// record the table refuses fails alone, a record changed twice in one
// Write ends with its later change, a delete between them applies in its
// place, and every applied record is linked.
func TestBatchMixed(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := hostileDB(t, pg, "mixed")
	w := newWriter(t, "crm", testConfig(url))
	write(t, w, crmRecord(cdc.OpCreate, 1, "d0", "500", false, "email", `"gone@x"`, "firstname", `"Gus"`))

	poison := crmRecord(cdc.OpCreate, 2, "d2", "502", false, "email", `"p@x"`, "firstname", `"Pat"`)
	poison.Fields["score"] = "abc"
	res := write(t, w,
		crmRecord(cdc.OpCreate, 2, "d1", "501", false, "email", `"a@x"`, "firstname", `"Ada"`),
		poison,
		crmRecord(cdc.OpCreate, 2, "d3", "503", false, "email", `"c@x"`, "firstname", `"Cy"`),
		crmRecord(cdc.OpDelete, 3, "d4", "500", false, "email", `"gone@x"`),
		crmRecord(cdc.OpUpdate, 3, "d5", "503", false, "email", `"c@x"`, "firstname", `"Cyd"`),
		crmRecord(cdc.OpCreate, 2, "d6", "504", false, "email", `"d@x"`, "firstname", `"Dee"`),
	)
	for i, r := range res {
		if (r.Err != nil) != (i == 1) {
			t.Errorf("record %d: %v", i, r.Err)
		}
	}
	if !cdc.IsPermanent(res[1].Err) {
		t.Errorf("the poison record: %v, want a permanent error", res[1].Err)
	}
	for email, name := range map[string]string{"a@x": "Ada", "c@x": "Cyd", "d@x": "Dee"} {
		if got := row(t, url, email); got["name"] != name {
			t.Errorf("%s: %v, want name %s", email, got, name)
		}
	}
	if got := row(t, url, "p@x"); got != nil {
		t.Errorf("the poison record was written: %v", got)
	}
	if got := row(t, url, "gone@x"); got != nil {
		t.Errorf("the deleted record is there: %v", got)
	}
	for email, id := range map[string]string{"a@x": "501", "c@x": "503", "d@x": "504"} {
		if got, _ := linkedTo(t, url, email); got != id {
			t.Errorf("%s linked to %q, want %s", email, got, id)
		}
	}
	if _, n := linkedTo(t, url, ""); n != 3 {
		t.Errorf("%d links, want 3", n)
	}

	// A stale change among fresh ones is skipped; the others apply.
	res = write(t, w,
		crmRecord(cdc.OpUpdate, 1, "d7", "501", false, "email", `"a@x"`, "firstname", `"Old"`),
		crmRecord(cdc.OpUpdate, 4, "d8", "504", false, "email", `"d@x"`, "firstname", `"Dot"`))
	if res[0].Err != nil || res[0].Version == "" || res[1].Err != nil || row(t, url, "a@x")["name"] != "Ada" || row(t, url, "d@x")["name"] != "Dot" {
		t.Fatalf("results %+v; a@x %v, d@x %v", res, row(t, url, "a@x"), row(t, url, "d@x"))
	}
}

// Two changes of one Write that turn out to reach one row (a partial
// change of a linked record, and another record's change matched to the
// same row by its email) are applied one after the other, as they came:
// the later record takes the row over.
func TestBatchSharedRow(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := hostileDB(t, pg, "shared")
	w := newWriter(t, "crm", testConfig(url))
	write(t, w, crmRecord(cdc.OpCreate, 1, "d0", "600", false, "email", `"s@x"`, "firstname", `"Sam"`))
	res := write(t, w,
		crmRecord(cdc.OpUpdate, 2, "d1", "600", true, "firstname", `"Sal"`),
		crmRecord(cdc.OpCreate, 2, "d2", "601", false, "email", `"s@x"`, "firstname", `"Sue"`))
	if res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("results %+v", res)
	}
	if got := row(t, url, "s@x")["name"]; got != "Sue" {
		t.Errorf("name %s, want the later change's", got)
	}
	if got, n := linkedTo(t, url, "s@x"); got != "601" || n != 1 {
		t.Errorf("s@x linked to %q (%d links), want 601 alone", got, n)
	}
}

// Linked changes of one Write are compared together: one that conflicts
// with a local change is left to the policy (here manual: escalated, the
// local value kept), one that does not applies; a later change of the
// record in conflict joins the open conflict while the other applies.
func TestBatchConflicts(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := hostileDB(t, pg, "conflicts")
	w, err := New("crm", testConfig(url), Inbound{Conflicts: &Conflicts{
		Pipeline: "crm-in", Policy: conflict.Policy{Rules: []conflict.Rule{{Kind: conflict.KindManual}}},
		Columns: map[string]string{"email": "email", "firstname": "name"},
	}}, config.Env{Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(context.Background()) })
	write(t, w,
		crmRecord(cdc.OpCreate, 1, "d1", "512", false, "email", `"a@x"`, "firstname", `"Ada"`),
		crmRecord(cdc.OpCreate, 1, "d2", "513", false, "email", `"b@x"`, "firstname", `"Bob"`))
	pg.Exec(t, "conflicts", `UPDATE contacts SET name = 'Ann' WHERE email = 'a@x'`)

	res := write(t, w,
		crmRecord(cdc.OpUpdate, 2, "d3", "512", true, "firstname", `"Bea"`),
		crmRecord(cdc.OpUpdate, 2, "d4", "513", true, "firstname", `"Cy"`))
	if res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("results %+v", res)
	}
	if a, b := row(t, url, "a@x")["name"], row(t, url, "b@x")["name"]; a != "Ann" || b != "Cy" {
		t.Fatalf("names %s, %s; want the local Ann kept and Cy applied", a, b)
	}
	c := lastConflict(t, url)
	if c.n != 1 || c.status != "escalated" || c.fields != "firstname" {
		t.Fatalf("conflicts %+v, want firstname of 512 escalated", c)
	}
	var remote string
	res = write(t, w,
		crmRecord(cdc.OpUpdate, 3, "d5", "512", true, "firstname", `"Bee"`),
		crmRecord(cdc.OpUpdate, 3, "d6", "513", true, "firstname", `"Cyd"`))
	if res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("results %+v", res)
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(context.Background(), `SELECT remote->>'firstname' FROM cdcd.conflicts WHERE external_id = '512'`).Scan(&remote); err != nil {
		t.Fatal(err)
	}
	if a, b := row(t, url, "a@x")["name"], row(t, url, "b@x")["name"]; a != "Ann" || b != "Cyd" || remote != "Bee" {
		t.Fatalf("names %s, %s, conflict's remote %s; want Ann kept, Cyd applied, Bee joined the conflict", a, b, remote)
	}
}

// Runs of one Write roll back alone: a run that has to be applied one by
// one (a linked row deleted locally, a value the table refuses) keeps
// what the runs before it wrote, whose savepoint the next run's reads
// release, and each record ends as it would alone.
func TestBatchRunsRollBackAlone(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := hostileDB(t, pg, "runs")
	w := newWriter(t, "crm", testConfig(url))
	emails := map[string]string{"801": "a@x", "802": "b@x", "803": "c@x", "804": "d@x", "805": "e@x", "806": "f@x", "807": "g@x", "808": "h@x"}
	var creates []syncapi.Record
	for _, id := range slices.Sorted(maps.Keys(emails)) {
		creates = append(creates, crmRecord(cdc.OpCreate, 1, "c"+id, id, false, "email", `"`+emails[id]+`"`, "firstname", `"New"`))
	}
	write(t, w, creates...)
	pg.Exec(t, "runs", `DELETE FROM contacts WHERE email = 'c@x'`)
	update := func(id, name string) syncapi.Record {
		return crmRecord(cdc.OpUpdate, 2, "u"+id, id, false, "email", `"`+emails[id]+`"`, "firstname", `"`+name+`"`)
	}
	poison := update("806", "Fay")
	poison.Fields["score"] = "abc"
	res := write(t, w,
		update("801", "Ada"), update("802", "Bob"), // a run that applies
		crmRecord(cdc.OpDelete, 2, "x805", "805", false, "email", `"e@x"`),
		update("803", "Cy"), update("804", "Dee"), // c's row is gone: one by one
		crmRecord(cdc.OpDelete, 2, "x808", "808", false, "email", `"h@x"`),
		poison, update("807", "Gus"), // f is refused: one by one
	)
	for i, r := range res {
		if (r.Err != nil) != (i == 6) {
			t.Errorf("record %d: %v", i, r.Err)
		}
	}
	if !cdc.IsPermanent(res[6].Err) {
		t.Errorf("the refused record: %v, want a permanent error", res[6].Err)
	}
	for email, name := range map[string]string{"a@x": "Ada", "b@x": "Bob", "c@x": "Cy", "d@x": "Dee", "f@x": "New", "g@x": "Gus"} {
		if got := row(t, url, email); got["name"] != name {
			t.Errorf("%s: %v, want name %s", email, got, name)
		}
	}
	for _, email := range []string{"e@x", "h@x"} {
		if got := row(t, url, email); got != nil {
			t.Errorf("the deleted record %s is there: %v", email, got)
		}
	}
	for id, email := range map[string]string{"801": "a@x", "802": "b@x", "803": "c@x", "804": "d@x", "806": "f@x", "807": "g@x"} {
		if got, _ := linkedTo(t, url, email); got != id {
			t.Errorf("%s linked to %q, want %s", email, got, id)
		}
	}

	// Redelivered, the same changes fail nothing and change nothing.
	pg.Exec(t, "runs", `UPDATE contacts SET name = 'Local' WHERE email = 'g@x'`)
	again := write(t, w, update("801", "Ada"), update("802", "Bob"), update("803", "Cy"), update("804", "Dee"), update("807", "Gus"))
	for i, r := range again {
		if r.Err != nil {
			t.Errorf("redelivered record %d: %v", i, r.Err)
		}
	}
	if got := row(t, url, "g@x")["name"]; got != "Local" {
		t.Errorf("g@x: name %s after a redelivery, want the local change kept", got)
	}
}
