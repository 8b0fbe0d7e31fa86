package hubspot

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
	fake "github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

func TestFetch(t *testing.T) {
	srv := start(t, fake.Options{})
	w := newWriter(t, srv, nil, nil)
	id := srv.Insert("contacts", map[string]string{"email": "ada@example.com", "firstname": "Ada", "phone": "1"})

	row, err := w.Fetch(context.Background(), "contacts", id, []string{"email", "firstname"})
	if err != nil {
		t.Fatal(err)
	}
	email, _ := row.Get("email")
	first, _ := row.Get("firstname")
	if string(email) != `"ada@example.com"` || string(first) != `"Ada"` {
		t.Fatalf("row %s", cdc.AppendKey(nil, &cdc.Event{Key: row}))
	}
	if _, ok := row.Get("phone"); ok {
		t.Fatal("a property that was not asked for came back")
	}
	reqs := srv.Requests()
	last := reqs[len(reqs)-1]
	if last.Method != "GET" || last.Path != "/crm/v3/objects/contacts/"+id {
		t.Fatalf("request %s %s", last.Method, last.Path)
	}

	if _, err := w.Fetch(context.Background(), "contacts", "999999", nil); !errors.Is(err, delivery.ErrNotFound) {
		t.Fatalf("unknown id: %v, want ErrNotFound", err)
	}
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
	calls := 0
	for _, r := range srv.Requests() {
		if r.Path == "/crm/v3/objects/contacts/batch/read" {
			calls++
		}
	}
	if calls != 2 {
		t.Fatalf("%d batch reads for 151 ids, want 2", calls)
	}
}
