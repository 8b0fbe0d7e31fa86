package salesforce

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncapi"
	"github.com/cdcd-dev/cdcd/vendortest/salesforce"
)

// Regression: a collection refused whole with a 400 because one record is
// not well formed (a date field given a timestamp, a field hidden by
// field-level security) dead-lettered every record of the batch. It is
// split until only the records at fault fail.
func TestWholeRequest400IsSplit(t *testing.T) {
	t.Parallel()
	srv, c := ccServer(t, salesforce.Options{
		DateFields: map[string][]string{"Contact": {"Birthdate"}},
		Hidden:     map[string][]string{"Contact": {"Salary__c"}},
	})
	w := newWriter(t, c)
	recs := make([]syncapi.Record, 9)
	for i := range recs {
		recs[i] = upsert(map[string]any{ext: "s-" + string(rune('a'+i)), "LastName": "L", "Birthdate": "1990-01-02"})
	}
	recs[2].Fields["Birthdate"] = "1990-01-02T00:00:00Z"
	recs[7].Fields["Salary__c"] = 1
	res := write(t, w, recs...)
	for i, r := range res {
		switch i {
		case 2:
			if !cdc.IsPermanent(r.Err) || !strings.Contains(r.Err.Error(), "JSON_PARSER_ERROR") {
				t.Errorf("record 2: %v, want permanent JSON_PARSER_ERROR", r.Err)
			}
		case 7:
			if !cdc.IsPermanent(r.Err) || !strings.Contains(r.Err.Error(), "INVALID_FIELD") {
				t.Errorf("record 7: %v, want permanent INVALID_FIELD", r.Err)
			}
		default:
			if r.Err != nil || r.ExternalID == "" {
				t.Errorf("record %d: %+v, want written", i, r)
			}
		}
	}
	if n := len(srv.Records("Contact")); n != 7 {
		t.Errorf("%d records in Salesforce, want 7", n)
	}
}

// A field hidden from cdcd's user in every record is refused whole: the
// records holding it fail at once, without a call per half, and the
// others are written in one more call.
func TestHiddenFieldFailsItsRecordsWithoutSplitting(t *testing.T) {
	t.Parallel()
	srv, c := ccServer(t, salesforce.Options{Hidden: map[string][]string{"Contact": {"Salary__c"}}})
	w := newWriter(t, c)
	recs := make([]syncapi.Record, 200)
	for i := range recs {
		recs[i] = upsert(map[string]any{ext: fmt.Sprintf("h-%d", i), "LastName": "L", "Salary__c": i})
	}
	recs[5] = upsert(map[string]any{ext: "h-clean", "LastName": "Clean"})
	res := write(t, w, recs...)
	for i, r := range res {
		if i == 5 {
			if r.Err != nil {
				t.Errorf("record without the field: %v", r.Err)
			}
		} else if !cdc.IsPermanent(r.Err) || !strings.Contains(r.Err.Error(), "Salary__c") {
			t.Fatalf("record %d: %v, want permanent naming Salary__c", i, r.Err)
		}
	}
	upserts := 0
	for _, r := range srv.Requests() {
		if r.Method == "PATCH" {
			upserts++
		}
	}
	if upserts != 2 {
		t.Errorf("%d collection calls, want 2", upserts)
	}
}

// Regression: call-level UNABLE_TO_LOCK_ROW was dead-lettered, and the
// concurrent long-running request limit paused the account as long as an
// exhausted daily allocation.
func TestCallErrorClasses(t *testing.T) {
	t.Parallel()
	t.Run("lock", func(t *testing.T) {
		t.Parallel()
		srv, c := ccServer(t, salesforce.Options{})
		srv.FailCalls(1, 400, "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record or 1 records: 003RM00000Ab1CdYAJ")
		res := write(t, newWriter(t, c), upsert(map[string]any{ext: "k-1", "LastName": "A"}), upsert(map[string]any{ext: "k-2", "LastName": "B"}))
		for i, r := range res {
			if r.Err == nil || cdc.IsPermanent(r.Err) {
				t.Errorf("record %d: %v, want transient", i, r.Err)
			}
		}
		if len(srv.Records("Contact")) != 0 {
			t.Error("a refused call had an effect")
		}
	})
	t.Run("concurrent limit", func(t *testing.T) {
		t.Parallel()
		srv, c := ccServer(t, salesforce.Options{})
		srv.FailCalls(1, 403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.")
		res := write(t, newWriter(t, c), upsert(map[string]any{ext: "k-3", "LastName": "C"}))
		d, ok := cdc.RetryAfterOf(res[0].Err)
		if !ok || d > time.Minute || cdc.IsPermanent(res[0].Err) || errors.Is(res[0].Err, ErrRequestLimit) {
			t.Fatalf("%v (retry after %v), want a retry within seconds, not the daily allocation", res[0].Err, d)
		}
	})
}

// Regression: every 404 was "already deleted", so a delete with a wrong
// external id field or object was reported done while nothing was deleted.
func TestNotFoundClasses(t *testing.T) {
	t.Parallel()
	srv, c := ccServer(t, salesforce.Options{ExternalIDs: map[string][]string{"Contact": {ext}}})
	w := newWriter(t, c)
	gone := srv.Insert("Contact", map[string]any{ext: "n-1", "LastName": "A"})
	write(t, w, remove(gone, nil))

	bad := *c
	bad.ExternalIDField = "Legacy_Id__c"
	wrongField := newWriter(t, &bad)
	other := *c
	other.Object = "Invoice__c"
	wrongObject := newWriter(t, &other)

	if res := write(t, w, remove(gone, nil)); res[0].Err != nil {
		t.Errorf("a deleted record (ENTITY_IS_DELETED): %v, want done", res[0].Err)
	}
	if res := write(t, w, remove("", map[string]any{ext: "n-never"})); res[0].Err != nil {
		t.Errorf("a record that never existed: %v, want done", res[0].Err)
	}
	if res := write(t, wrongField, remove("", map[string]any{"Legacy_Id__c": "n-1"})); !cdc.IsPermanent(res[0].Err) ||
		!strings.Contains(res[0].Err.Error(), "external_id_field") {
		t.Errorf("an external id field that does not exist: %v, want permanent naming external_id_field", res[0].Err)
	}
	if res := write(t, wrongObject, remove("a0X000000000001AAA", nil)); !cdc.IsPermanent(res[0].Err) ||
		!strings.Contains(res[0].Err.Error(), "Invoice__c does not exist") {
		t.Errorf("an unknown object: %v, want permanent", res[0].Err)
	}
	if rows, err := w.Fetch(context.Background(), "Contact", []string{gone}, nil); err != nil || len(rows) != 0 {
		t.Errorf("Fetch of a deleted record: %v, %v; want no row and no error", rows, err)
	}
	for _, fields := range [][]string{nil, {"Name"}} {
		if _, err := wrongObject.Fetch(context.Background(), "", []string{"a0X000000000001AAA"}, fields); !cdc.IsPermanent(err) {
			t.Errorf("Fetch of an unknown object (fields %v): %v, want permanent", fields, err)
		}
	}
}

// Change events name compound components "MailingAddress.City"; REST
// names them MailingCity and refuses the dotted name.
func TestFetchCompoundNames(t *testing.T) {
	t.Parallel()
	srv, c := ccServer(t, salesforce.Options{})
	w := newWriter(t, c)
	id := srv.Insert("Contact", map[string]any{"FirstName": "Ada", "MailingCity": "London", "Email": "ada@example.com", ext: "c-1"})
	rows, err := w.Fetch(context.Background(), "", []string{id}, []string{"Name.FirstName", "MailingAddress.City", "Email", "OtherAddress.City"})
	if err != nil {
		t.Fatal(err)
	}
	row := rows[id]
	want := map[string]string{"Name.FirstName": `"Ada"`, "MailingAddress.City": `"London"`, "Email": `"ada@example.com"`, "OtherAddress.City": "null"}
	if len(row) != len(want) {
		t.Fatalf("row %s, want %v", row, want)
	}
	for name, v := range want {
		if got, _ := row.Get(name); string(got) != v {
			t.Errorf("%s = %s, want %s", name, got, v)
		}
	}
}
