package salesforce

import (
	"context"
	"errors"
	"testing"

	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/vendortest/salesforce"
)

func TestFetch(t *testing.T) {
	t.Parallel()
	srv, c := ccServer(t, salesforce.Options{})
	w := newWriter(t, c)
	var _ delivery.Fetcher = w
	id := srv.Insert("Contact", map[string]any{"Email": "ada@example.com", "FirstName": "Ada", "Phone": "1", ext: "42"})
	row, err := w.Fetch(context.Background(), "", id, []string{"Email", "FirstName"})
	if err != nil {
		t.Fatal(err)
	}
	email, _ := row.Get("Email")
	first, _ := row.Get("FirstName")
	if string(email) != `"ada@example.com"` || string(first) != `"Ada"` || len(row) != 2 {
		t.Fatalf("row %+v", row)
	}
	if _, err := w.Fetch(context.Background(), "Contact", "003000000000404", nil); !errors.Is(err, delivery.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	all, err := w.Fetch(context.Background(), "Contact", id, nil)
	if err != nil || len(all) < 4 {
		t.Fatalf("all fields: %+v, %v", all, err)
	}
	if _, ok := all.Get("attributes"); ok {
		t.Fatal("attributes are not a field")
	}
}
