package hubspot

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	fake "github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

func TestFetch(t *testing.T) {
	srv := start(t, fake.Options{})
	w := newWriter(t, srv, nil, nil)
	ids := make([]string, 150)
	for i := range ids {
		ids[i] = srv.Insert("contacts", map[string]string{"email": fmt.Sprintf("c%d@example.com", i), "firstname": "Ada", "phone": "1"})
	}
	rows, err := w.Fetch(context.Background(), "contacts", append(ids, "999999"), []string{"email", "firstname"})
	if err != nil {
		t.Fatal(err)
	}
	row := rows[ids[120]]
	email, _ := row.Get("email")
	first, _ := row.Get("firstname")
	if len(rows) != 150 || string(email) != `"c120@example.com"` || string(first) != `"Ada"` {
		t.Fatalf("%d rows; %s", len(rows), cdc.AppendKey(nil, &cdc.Event{Key: row}))
	}
	if _, ok := row.Get("phone"); ok {
		t.Fatal("a property that was not asked for came back")
	}
	if _, ok := rows["999999"]; ok {
		t.Fatal("a record that does not exist came back")
	}
	if n := batchReads(srv); n != 2 {
		t.Fatalf("%d batch reads for 151 ids, want 2", n)
	}
}

// Regression: a failed read failed every record of the batch.
func TestFetchFailedCallFailsOnlyItsIDs(t *testing.T) {
	srv := start(t, fake.Options{})
	w := newWriter(t, srv, nil, nil)
	ids := make([]string, 150)
	for i := range ids {
		ids[i] = srv.Insert("contacts", map[string]string{"email": fmt.Sprintf("c%d@example.com", i)})
	}
	srv.FailNext(fake.Fault502, 1)
	rows, err := w.Fetch(context.Background(), "contacts", ids, []string{"email"})
	if err == nil || cdc.IsPermanent(err) {
		t.Fatalf("error %v, want a transient one", err)
	}
	if len(rows) != 50 {
		t.Fatalf("%d rows, want the 50 of the call that succeeded", len(rows))
	}
	for _, id := range ids[100:] {
		if _, ok := rows[id]; !ok {
			t.Fatalf("record %s of the second call is missing", id)
		}
	}
}

func batchReads(srv *fake.Server) int {
	calls := 0
	for _, r := range srv.Requests() {
		if r.Path == "/crm/v3/objects/contacts/batch/read" {
			calls++
		}
	}
	return calls
}

func TestVersions(t *testing.T) {
	srv := start(t, fake.Options{})
	w := newWriter(t, srv, nil, nil)
	ids := make([]string, 150)
	for i := range ids {
		ids[i] = srv.Insert("contacts", map[string]string{"email": fmt.Sprintf("c%d@example.com", i)})
	}
	srv.Update("contacts", ids[120], map[string]string{"firstname": "Bea"})
	got, err := w.Versions(context.Background(), "", append(ids, "999999"))
	if err != nil {
		t.Fatal(err)
	}
	moved, _ := srv.Get("contacts", ids[120])
	if len(got) != 150 || !got[ids[120]].Equal(moved.UpdatedAt.Truncate(time.Millisecond)) {
		t.Fatalf("%d versions; %s = %v, want %v", len(got), ids[120], got[ids[120]], moved.UpdatedAt)
	}
	if calls := batchReads(srv); calls != 2 {
		t.Fatalf("%d batch reads for 151 ids, want 2", calls)
	}
}
