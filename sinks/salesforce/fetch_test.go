package salesforce

import (
	"context"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/syncapi"
	"github.com/cdcd-dev/cdcd/vendortest/salesforce"
)

func TestFetch(t *testing.T) {
	t.Parallel()
	srv, c := ccServer(t, salesforce.Options{})
	w := newWriter(t, c)
	var _ syncapi.Fetcher = w
	id := srv.Insert("Contact", map[string]any{"Email": "ada@example.com", "FirstName": "Ada", "Phone": "1", ext: "42"})
	rows, err := w.Fetch(context.Background(), "", []string{id, "003000000000404"}, []string{"Email", "FirstName"})
	if err != nil {
		t.Fatal(err)
	}
	row := rows[id]
	email, _ := row.Get("Email")
	first, _ := row.Get("FirstName")
	if string(email) != `"ada@example.com"` || string(first) != `"Ada"` || len(row) != 2 || len(rows) != 1 {
		t.Fatalf("rows %+v", rows)
	}
	if n := collectionReads(srv); n != 1 {
		t.Fatalf("%d collection reads, want 1", n)
	}
	all, err := w.Fetch(context.Background(), "Contact", []string{id, "003000000000404"}, nil)
	if err != nil || len(all) != 1 || len(all[id]) < 4 {
		t.Fatalf("all fields: %+v, %v", all, err)
	}
	if _, ok := all[id].Get("attributes"); ok {
		t.Fatal("attributes are not a field")
	}
}

func collectionReads(srv *salesforce.Server) int {
	calls := 0
	for _, r := range srv.Requests() {
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/composite/sobjects/Contact") {
			calls++
		}
	}
	return calls
}
