package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/cdcd-dev/cdcd/cdc"
)

// maxRetrieve is the most ids one sObject Collections retrieve takes in
// cdcd's calls (Salesforce allows 2000; the URL of a GET would not).
const maxRetrieve = 200

// Fetch reads records back by Id with the fields asked, for Change Data
// Capture events that named too little: by sObject Collections (POST
// /composite/sobjects/{object}, 200 ids a call), or one GET per record
// when no fields are named (a collection needs them). It implements
// syncapi.Fetcher: a failed call leaves its ids without rows, and the
// rows of the other calls are returned with its error.
func (w *Writer) Fetch(ctx context.Context, object string, ids, fields []string) (map[string]cdc.Row, error) {
	if object == "" {
		object = w.cfg.Object
	}
	out := make(map[string]cdc.Row, len(ids))
	var errs []error
	if len(fields) == 0 {
		for _, id := range ids {
			if err := w.fetchOne(ctx, object, id, out); err != nil {
				errs = append(errs, err)
			}
		}
		return out, errors.Join(errs...)
	}
	for chunk := range slices.Chunk(ids, maxRetrieve) {
		if err := w.retrieve(ctx, object, chunk, fields, out); err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// retrieve reads one collection of records into out.
//
// Fields are named as change events name them, which for the components
// of compound fields differs from REST: an event's "MailingAddress.City"
// is REST's MailingCity, "Name.FirstName" is FirstName, a geolocation's
// "Place__c.Latitude" is Place__Latitude__s ("Get Compound Fields in
// Change Events", Change Data Capture Developer Guide; "Compound Fields",
// SOAP API Developer Guide). retrieve asks REST for its names and returns
// the events', so one field list serves the event filter and the
// read-back.
func (w *Writer) retrieve(ctx context.Context, object string, ids, fields []string, out map[string]cdc.Row) error {
	op := fmt.Sprintf("read %d %s back", len(ids), object)
	names := map[string]string{} // REST name → event name
	var rest []string
	for _, f := range fields {
		r := restField(f)
		if _, dup := names[r]; !dup {
			rest = append(rest, r)
		}
		names[r] = f
	}
	body, err := json.Marshal(map[string][]string{"ids": ids, "fields": rest})
	if err != nil {
		return cdc.Permanent(fmt.Errorf("%s: %w", op, err))
	}
	status, h, resp, err := w.call(ctx, http.MethodPost, "/composite/sobjects/"+url.PathEscape(object), body)
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", op, err)
	case status == http.StatusNotFound:
		if err := w.missing(ctx, op, object, resp); err != nil {
			return err
		}
		return w.statusError(op, status, h, resp)
	case status != http.StatusOK:
		return w.statusError(op, status, h, resp)
	}
	var recs []map[string]json.RawMessage
	if err := json.Unmarshal(resp, &recs); err != nil {
		return fmt.Errorf("%s: the answer is not a list of records: %w", op, err)
	}
	for _, rec := range recs {
		var id string
		if rec == nil || json.Unmarshal(rec["Id"], &id) != nil || !slices.Contains(ids, id) {
			continue // null: no such record
		}
		out[id] = row(rec, names)
	}
	return nil
}

// fetchOne reads one record, with all its fields, into out; a record
// that does not exist is left out.
func (w *Writer) fetchOne(ctx context.Context, object, id string, out map[string]cdc.Row) error {
	op := "read " + object + " " + id
	status, h, resp, err := w.call(ctx, http.MethodGet, "/sobjects/"+url.PathEscape(object)+"/"+url.PathEscape(id), nil)
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", op, err)
	case status == http.StatusNotFound:
		return w.missing(ctx, op, object, resp) // nil: the record is gone
	case status != http.StatusOK:
		return w.statusError(op, status, h, resp)
	}
	var rec map[string]json.RawMessage
	if err := json.Unmarshal(resp, &rec); err != nil {
		return fmt.Errorf("%s: the answer is not a record: %w", op, err)
	}
	out[id] = row(rec, nil)
	return nil
}

// row is a record's fields, without attributes, sorted by name: those in
// names (REST name → the name to give it) when names is not nil, else all.
func row(rec map[string]json.RawMessage, names map[string]string) cdc.Row {
	delete(rec, "attributes")
	r := make(cdc.Row, 0, len(rec))
	for _, name := range slices.Sorted(maps.Keys(rec)) {
		if names == nil {
			r = append(r, cdc.Field{Name: name, Value: rec[name]})
		} else if as, ok := names[name]; ok {
			r = append(r, cdc.Field{Name: as, Value: rec[name]})
		}
	}
	return r
}

// restField is the REST name of a field named as change events name it.
func restField(name string) string {
	parent, part, ok := strings.Cut(name, ".")
	switch {
	case !ok:
		return name
	case parent == "Name":
		return part
	case strings.HasSuffix(parent, "Address"):
		return strings.TrimSuffix(parent, "Address") + part
	case strings.HasSuffix(parent, "__c"):
		return strings.TrimSuffix(parent, "__c") + "__" + part + "__s"
	}
	return name
}
