package salesforce

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncapi"
	"github.com/cdcd-dev/cdcd/vendortest/salesforce"
)

func TestDelete(t *testing.T) {
	t.Parallel()
	srv, c := ccServer(t, salesforce.Options{})
	w := newWriter(t, c)
	linked := srv.Insert("Contact", map[string]any{ext: "d-link", "LastName": "A"})
	found := srv.Insert("Contact", map[string]any{ext: "d-lookup", "LastName": "B"})
	dupA := srv.Insert("Contact", map[string]any{ext: "d-dup", "LastName": "C"})
	dupB := srv.Insert("Contact", map[string]any{ext: "d-dup", "LastName": "D"})

	res := write(t, w,
		remove(linked, nil),
		remove("", map[string]any{ext: "d-lookup"}),
		remove("", map[string]any{ext: "d-never-synced"}),
		remove("", map[string]any{ext: "d-dup"}),
		remove("", map[string]any{"LastName": "no external id"}),
		remove(linked, nil), // already gone
	)
	if res[0].Err != nil || res[0].ExternalID != linked {
		t.Errorf("delete via link: %+v", res[0])
	}
	if res[1].Err != nil || res[1].ExternalID != found {
		t.Errorf("delete via lookup: %+v, want id %s", res[1], found)
	}
	if res[2].Err != nil {
		t.Errorf("delete of a record that does not exist: %v", res[2].Err)
	}
	if err := res[3].Err; !cdc.IsPermanent(err) || !strings.Contains(err.Error(), dupA) || !strings.Contains(err.Error(), dupB) {
		t.Errorf("several matches (300): %v, want permanent naming %s and %s", err, dupA, dupB)
	}
	if !cdc.IsPermanent(res[4].Err) {
		t.Errorf("no link and no external id: %v, want permanent", res[4].Err)
	}
	if res[5].Err != nil {
		t.Errorf("second delete: %v", res[5].Err)
	}
	left := srv.Records("Contact")
	if _, ok := left[linked]; ok {
		t.Error("linked record not deleted")
	}
	if _, ok := left[found]; ok {
		t.Error("looked-up record not deleted")
	}
	if len(left) != 2 {
		t.Errorf("%d records left, want the 2 duplicates", len(left))
	}
	assertCallOptions(t, srv, "cdcd")
}

func TestRequestLimitExceeded(t *testing.T) {
	t.Parallel()
	srv, c := ccServer(t, salesforce.Options{DailyLimit: 1})
	c.LimitBackoff = time.Hour
	w := newWriter(t, c)
	write(t, w, upsert(map[string]any{ext: "l-1", "LastName": "A"}))

	res := write(t, w, upsert(map[string]any{ext: "l-2", "LastName": "B"}), remove("003x", nil), remove("003y", nil))
	for i, r := range res {
		if d, ok := cdc.RetryAfterOf(r.Err); !ok || d != time.Hour || cdc.IsPermanent(r.Err) {
			t.Errorf("record %d: %v, want retry after 1h", i, r.Err)
		}
	}
	calls := len(srv.Requests())
	// The account is paused: nothing goes out until the backoff ends.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := w.Write(ctx, []syncapi.Record{upsert(map[string]any{ext: "l-3", "LastName": "C"})}); err == nil {
		t.Error("write during the pause succeeded")
	}
	if n := len(srv.Requests()); n != calls {
		t.Errorf("%d requests during the pause", n-calls)
	}
	// token, upsert, refused upsert; the deletes were not attempted.
	if calls != 3 {
		t.Errorf("%d requests, want 3", calls)
	}
}

func TestServerErrorsAreTransient(t *testing.T) {
	t.Parallel()
	srv, c := ccServer(t, salesforce.Options{Faults: salesforce.Faults{Seed: 1, Rate5xx: 1}})
	w := newWriter(t, c)
	res := write(t, w, upsert(map[string]any{ext: "f-1", "LastName": "A"}), remove("003z", nil))
	for i, r := range res {
		if r.Err == nil || cdc.IsPermanent(r.Err) {
			t.Errorf("record %d: %v, want transient", i, r.Err)
		}
	}
	if len(srv.Records("Contact")) != 0 {
		t.Error("a failed call had an effect")
	}
}

func TestTimeoutIsTransient(t *testing.T) {
	t.Parallel()
	_, c := ccServer(t, salesforce.Options{Faults: salesforce.Faults{Seed: 1, Timeout: 1}})
	c.Timeout = 100 * time.Millisecond
	w := newWriter(t, c)
	res := write(t, w, upsert(map[string]any{ext: "t-1", "LastName": "A"}))
	if res[0].Err == nil || cdc.IsPermanent(res[0].Err) {
		t.Fatalf("timeout: %v, want transient", res[0].Err)
	}
	if strings.Contains(res[0].Err.Error(), "t-1") {
		t.Errorf("error %q holds a record value", res[0].Err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	c.APIVersion = "60"
	c.Auth = Auth{Type: "jwt", ClientID: "k"}
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"api_version", "object", "external_id_field", "auth.private_key", "auth.username"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s:\n%v", want, err)
		}
	}
}
