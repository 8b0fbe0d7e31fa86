package hubspot

import (
	"context"
	"errors"
	"testing"

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
