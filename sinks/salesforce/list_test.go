package salesforce

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/sources/imports"
	"github.com/cdcd-dev/cdcd/sources/webhook"
	"github.com/cdcd-dev/cdcd/vendortest/salesforce"
)

type collect map[string]webhook.Change

func (c collect) Accept(_ context.Context, _ string, changes []webhook.Change) error {
	for _, ch := range changes {
		v, _ := ch.Key.Get("id")
		var id string
		_ = json.Unmarshal(v, &id)
		c[id] = ch
	}
	return nil
}

// TestListByID imports 4,500 contacts from an org that answers 1,500
// records a query (the rest behind a locator that has expired by the time
// it is used) and fails a fifth of its calls: every contact arrives once,
// with its fields (null where it has none) and LastModifiedDate, and
// every query is by Id after the last page, never by locator.
func TestListByID(t *testing.T) {
	t.Parallel()
	srv, c := ccServer(t, salesforce.Options{QueryBatch: 1500, ExpireLocators: true, Faults: salesforce.Faults{Seed: 5, Rate5xx: 0.2}})
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range 4500 {
		f := map[string]any{"Email": fmt.Sprintf("c%d@example.com", i), "LastModifiedDate": base.Add(time.Duration(i) * time.Second).Format("2006-01-02T15:04:05.000-0700")}
		if i%2 == 0 {
			f["MailingCity"] = "Zürich 'quoted'"
		}
		srv.Insert("Contact", f)
	}
	w := newWriter(t, c)
	got := collect{}
	err := imports.Run(context.Background(), imports.Config{System: "sf", Object: "Contact", Fields: []string{"Email", "MailingAddress.City"}, Job: "1",
		MaxAttempts: 30, BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond}, w, got, "", func(context.Context, string, int) error { return nil },
		zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4500 {
		t.Fatalf("%d contacts, want 4500", len(got))
	}
	for _, ch := range got {
		city, ok := ch.After.Get("MailingAddress.City")
		email, _ := ch.After.Get("Email")
		if !ok || ch.CommitTime.Before(base) || !strings.HasPrefix(string(email), `"c`) {
			t.Fatalf("change %+v", ch.Event)
		}
		var n int
		fmt.Sscanf(string(email), `"c%d@`, &n)
		if (n%2 == 0) != (string(city) != "null") || !ch.CommitTime.Equal(base.Add(time.Duration(n)*time.Second)) {
			t.Fatalf("contact %d: city %s at %s", n, city, ch.CommitTime)
		}
	}
	for _, r := range srv.Requests() {
		if strings.Contains(r.Path, "/query/") {
			t.Fatalf("a query locator was used: %s", r.Path)
		}
	}
}
