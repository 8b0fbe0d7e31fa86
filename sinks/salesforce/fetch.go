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

	"github.com/cdcd-dev/cdcd/cdc"
)

// maxRetrieve is the most ids one sObject Collections retrieve takes in
// cdcd's calls (Salesforce allows 2000; the URL of a GET would not).
const maxRetrieve = 200

// Fetch reads records back by Id with the fields asked, for Change Data
// Capture events that named too little: by sObject Collections (POST
// /composite/sobjects/{object}, 200 ids a call), or one GET per record
// when no fields are named (a collection needs them). It implements
// delivery.Fetcher: a failed call leaves its ids without rows, and the
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
func (w *Writer) retrieve(ctx context.Context, object string, ids, fields []string, out map[string]cdc.Row) error {
	op := fmt.Sprintf("read %d %s back", len(ids), object)
	body, err := json.Marshal(map[string][]string{"ids": ids, "fields": fields})
	if err != nil {
		return cdc.Permanent(fmt.Errorf("%s: %w", op, err))
	}
	status, h, resp, err := w.call(ctx, http.MethodPost, "/composite/sobjects/"+url.PathEscape(object), body)
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", op, err)
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
		out[id] = row(rec, fields)
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
		return nil
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

// row is a record's fields, those named in fields (all when none), sorted
// by name, without attributes.
func row(rec map[string]json.RawMessage, fields []string) cdc.Row {
	delete(rec, "attributes")
	r := make(cdc.Row, 0, len(rec))
	for _, name := range slices.Sorted(maps.Keys(rec)) {
		if len(fields) == 0 || slices.Contains(fields, name) {
			r = append(r, cdc.Field{Name: name, Value: rec[name]})
		}
	}
	return r
}
