package hubspot

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncapi"
	fake "github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

func TestCreateUpdateArchive(t *testing.T) {
	t.Parallel()
	srv := start(t, fake.Options{})
	w := newWriter(t, srv, nil, func(c *Config) { c.Object = "companies" })

	recs := []syncapi.Record{
		upsertRec(`[1]`, "", map[string]any{"name": "Acme", "employees": float64(12)}),
		upsertRec(`[2]`, "", map[string]any{"name": "Globex", "public": true}),
	}
	res := write(t, w, recs)
	mustSucceed(t, res)
	for i, want := range []string{"Acme", "Globex"} {
		o := get(t, srv, "companies", res[i].ExternalID)
		if o.Properties["name"] != want {
			t.Fatalf("record %d linked to %s named %q, want %q", i, o.ID, o.Properties["name"], want)
		}
		if res[i].Version == "" || res[i].Version != o.Properties["lastmodifieddate"] {
			t.Fatalf("record %d: version %q, want updatedAt %q", i, res[i].Version, o.Properties["lastmodifieddate"])
		}
	}
	if got := get(t, srv, "companies", res[0].ExternalID).Properties["employees"]; got != "12" {
		t.Fatalf("employees = %q, want 12", got)
	}

	acme, globex := res[0].ExternalID, res[1].ExternalID
	res = write(t, w, []syncapi.Record{
		upsertRec(`[1]`, acme, map[string]any{"name": "Acme Corp"}),
		deleteRec(`[2]`, globex, map[string]any{"name": "Globex"}),
	})
	mustSucceed(t, res)
	if o := get(t, srv, "companies", acme); o.Properties["name"] != "Acme Corp" || res[0].ExternalID != acme {
		t.Fatalf("update: got %q on %s (result id %s)", o.Properties["name"], acme, res[0].ExternalID)
	}
	if !get(t, srv, "companies", globex).Archived {
		t.Fatal("deleted record not archived")
	}
	if n := len(srv.Objects("companies")); n != 2 {
		t.Fatalf("%d companies, want 2", n)
	}
}

func TestUpsertByIDPropertyIsIdempotent(t *testing.T) {
	t.Parallel()
	srv := start(t, fake.Options{})
	w := newWriter(t, srv, nil, func(c *Config) { c.IDProperty = "email" })
	existing := srv.Insert("contacts", map[string]string{"email": "old@example.com", "firstname": "Old"})

	recs := []syncapi.Record{
		upsertRec(`[1]`, "", map[string]any{"email": "new@example.com", "firstname": "Ada"}),
		upsertRec(`[2]`, "", map[string]any{"email": "OLD@example.com", "firstname": "Grace"}),
	}
	first := write(t, w, recs)
	mustSucceed(t, first)
	if first[1].ExternalID != existing {
		t.Fatalf("upsert of an existing email linked to %s, want %s", first[1].ExternalID, existing)
	}
	again := write(t, w, recs) // a retry after an unknown outcome
	mustSucceed(t, again)
	if again[0].ExternalID != first[0].ExternalID {
		t.Fatalf("second upsert gave id %s, first %s", again[0].ExternalID, first[0].ExternalID)
	}
	if n := len(srv.Objects("contacts")); n != 2 {
		t.Fatalf("%d contacts, want 2", n)
	}
	if got := get(t, srv, "contacts", existing).Properties["firstname"]; got != "Grace" {
		t.Fatalf("existing contact's firstname = %q, want Grace", got)
	}
	for _, r := range srv.Requests() {
		if r.Path != "/crm/v3/objects/contacts/batch/upsert" {
			t.Fatalf("unexpected call %s %s", r.Method, r.Path)
		}
	}
}

func TestDeletePolicies(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{OnDeleteArchive, OnDeleteClear, OnDeleteIgnore} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			srv := start(t, fake.Options{})
			w := newWriter(t, srv, nil, func(c *Config) { c.OnDelete = policy; c.IDProperty = "email" })
			id := srv.Insert("contacts", map[string]string{"email": "a@example.com", "firstname": "Ada", "phone": "123"})
			res := write(t, w, []syncapi.Record{
				deleteRec(`[1]`, id, map[string]any{"email": "a@example.com", "firstname": "Ada"}),
				deleteRec(`[2]`, "", map[string]any{"email": "never@example.com"}), // never synced
			})
			mustSucceedOrEmpty(t, res)
			o := get(t, srv, "contacts", id)
			switch policy {
			case OnDeleteArchive:
				if !o.Archived {
					t.Fatal("not archived")
				}
			case OnDeleteClear:
				if o.Archived || o.Properties["firstname"] != "" || o.Properties["email"] != "a@example.com" || o.Properties["phone"] != "123" {
					t.Fatalf("clear left %v; want firstname cleared, email and unmapped phone kept", o.Properties)
				}
			case OnDeleteIgnore:
				if n := len(srv.Requests()); n != 0 {
					t.Fatalf("ignore made %d calls", n)
				}
			}
			if n := len(srv.Objects("contacts")); n != 1 {
				t.Fatalf("%d contacts, want 1", n)
			}
		})
	}
}

func mustSucceedOrEmpty(t *testing.T, res []syncapi.Result) {
	t.Helper()
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("record %d: %v", i, r.Err)
		}
	}
}

func TestBatchesHoldAtMost100Inputs(t *testing.T) {
	t.Parallel()
	srv := start(t, fake.Options{})
	w := newWriter(t, srv, nil, nil)
	if w.MaxBatch() != 100 {
		t.Fatalf("MaxBatch = %d", w.MaxBatch())
	}
	res := write(t, w, contacts("b", 250))
	mustSucceed(t, res)
	var sizes []int
	for _, r := range srv.Requests() {
		var body struct{ Inputs []json.RawMessage }
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(body.Inputs))
	}
	if fmt.Sprint(sizes) != "[100 100 50]" {
		t.Fatalf("batch sizes %v, want [100 100 50]", sizes)
	}
	if n := len(srv.Objects("contacts")); n != 250 {
		t.Fatalf("%d contacts, want 250", n)
	}
}

// Results come back shuffled; each must land on its own record.
func TestPartialFailuresMapToTheirRecords(t *testing.T) {
	t.Parallel()
	srv := start(t, fake.Options{Seed: 7})
	w := newWriter(t, srv, nil, nil)
	recs := contacts("p", 10)
	for _, i := range []int{2, 7} {
		recs[i].Fields["email"] = fmt.Sprintf("not-an-email-%d", i)
	}
	res := write(t, w, recs)
	for i, r := range res {
		bad := i == 2 || i == 7
		switch {
		case bad && !cdc.IsPermanent(r.Err):
			t.Fatalf("record %d: err %v, want permanent", i, r.Err)
		case bad && !strings.Contains(r.Err.Error(), "INVALID_EMAIL") && !strings.Contains(r.Err.Error(), "is invalid"):
			t.Fatalf("record %d: err %q lacks HubSpot's message", i, r.Err)
		case !bad && r.Err != nil:
			t.Fatalf("record %d: %v", i, r.Err)
		case !bad && get(t, srv, "contacts", r.ExternalID).Properties["email"] != recs[i].Fields["email"]:
			t.Fatalf("record %d linked to the wrong contact %s", i, r.ExternalID)
		}
	}

	if r := srv.Requests(); r[0].Status != http.StatusMultiStatus {
		t.Fatalf("status %d, want 207", r[0].Status)
	}

	// Updates: one id no longer exists.
	gone := res[0].ExternalID
	upd := []syncapi.Record{
		upsertRec(`[0]`, gone, map[string]any{"firstname": "X"}),
		upsertRec(`[1]`, res[1].ExternalID, map[string]any{"firstname": "Y"}),
	}
	write(t, w, []syncapi.Record{deleteRec(`[0]`, gone, nil)})
	res = write(t, w, upd)
	if !cdc.IsPermanent(res[0].Err) || res[1].Err != nil {
		t.Fatalf("update results %v / %v; want the missing record to fail alone", res[0].Err, res[1].Err)
	}
}

func TestDuplicateEmailLinksAndUpdates(t *testing.T) {
	t.Parallel()
	srv := start(t, fake.Options{})
	w := newWriter(t, srv, nil, nil) // no id_property: plain creates
	existing := srv.Insert("contacts", map[string]string{"email": "dup@example.com", "firstname": "Old"})

	recs := contacts("n", 3)
	recs = append(recs, upsertRec(`["dup"]`, "", map[string]any{"email": "dup@example.com", "firstname": "New"}))
	res := write(t, w, recs)
	mustSucceed(t, res)
	if res[3].ExternalID != existing {
		t.Fatalf("duplicate linked to %s, want %s", res[3].ExternalID, existing)
	}
	if got := get(t, srv, "contacts", existing).Properties["firstname"]; got != "New" {
		t.Fatalf("existing contact not updated: firstname %q", got)
	}
	if n := len(srv.Objects("contacts")); n != 4 {
		t.Fatalf("%d contacts, want 4", n)
	}
	h := srv.History("contacts", existing)
	if len(h) != 2 || h[0].Op != "create" || h[1].Op != "update" {
		t.Fatalf("history of the existing contact: %+v", h)
	}
}

// Regression: two local records linked to one HubSpot record in one call
// made HubSpot refuse the whole batch ("Duplicate IDs"); the writer splits
// it so both apply.
func TestWholeBatchRefusalIsSplit(t *testing.T) {
	t.Parallel()
	srv := start(t, fake.Options{})
	w := newWriter(t, srv, nil, nil)
	id := srv.Insert("contacts", map[string]string{"email": "s@example.com"})
	other := srv.Insert("contacts", map[string]string{"email": "t@example.com"})
	res := write(t, w, []syncapi.Record{
		upsertRec(`[1]`, id, map[string]any{"firstname": "A"}),
		upsertRec(`[2]`, id, map[string]any{"lastname": "B"}),
		upsertRec(`[3]`, other, map[string]any{"firstname": "C"}),
	})
	mustSucceed(t, res)
	o := get(t, srv, "contacts", id)
	if o.Properties["firstname"] != "A" || o.Properties["lastname"] != "B" {
		t.Fatalf("properties %v", o.Properties)
	}
}

func TestRecordsOfSeveralObjects(t *testing.T) {
	t.Parallel()
	srv := start(t, fake.Options{})
	w := newWriter(t, srv, nil, func(c *Config) { c.Object = "" })
	recs := []syncapi.Record{
		{Op: cdc.OpCreate, Key: "1", Object: "deals", Fields: map[string]any{"dealname": "Big", "amount": json.Number("1000.50")}},
		{Op: cdc.OpCreate, Key: "2", Object: "companies", Fields: map[string]any{"name": "Acme"}},
		{Op: cdc.OpCreate, Key: "3", Fields: map[string]any{"name": "no object"}},
		{Op: cdc.OpCreate, Key: "4", Object: "deals", Fields: map[string]any{"nested": map[string]any{"a": "b"}}},
	}
	res := write(t, w, recs)
	if res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("errors %v, %v", res[0].Err, res[1].Err)
	}
	if !cdc.IsPermanent(res[2].Err) || !cdc.IsPermanent(res[3].Err) {
		t.Fatalf("want permanent errors, got %v, %v", res[2].Err, res[3].Err)
	}
	if got := get(t, srv, "deals", res[0].ExternalID).Properties["amount"]; got != "1000.50" {
		t.Fatalf("amount %q", got)
	}
}
