package hubspot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncapi"
)

var _ syncapi.Fetcher = (*Writer)(nil)

// Fetch reads records back by batch read (POST
// /crm/v3/objects/{object}/batch/read, 100 ids a call) with the named
// properties, for webhooks that carry one property or none. A row holds
// the properties HubSpot returned, as strings (or null), sorted by name;
// an id HubSpot does not return (archived, or never there) has none. It
// implements syncapi.Fetcher: a failed call leaves its ids without rows,
// and the rows of the other calls are returned with its error.
func (w *Writer) Fetch(ctx context.Context, object string, ids, fields []string) (map[string]cdc.Row, error) {
	if object == "" {
		object = w.object
	}
	out := make(map[string]cdc.Row, len(ids))
	var errs []error
	for chunk := range slices.Chunk(ids, maxBatch) {
		if err := w.readBatch(ctx, object, chunk, fields, out); err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// readBatch reads one batch of records into out.
func (w *Writer) readBatch(ctx context.Context, object string, ids, fields []string, out map[string]cdc.Row) error {
	inputs := make([]map[string]string, len(ids))
	for i, id := range ids {
		inputs[i] = map[string]string{"id": id}
	}
	req := map[string]any{"inputs": inputs}
	if len(fields) > 0 {
		req["properties"] = fields
	}
	var ans struct {
		Results []struct {
			ID         string                     `json:"id"`
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"results"`
	}
	op := fmt.Sprintf("read %d %s back", len(ids), object)
	if _, err := w.post(ctx, op, "/"+url.PathEscape(object)+"/batch/read", req, &ans); err != nil {
		return err
	}
	for _, r := range ans.Results {
		if !slices.Contains(ids, r.ID) {
			continue
		}
		row := make(cdc.Row, 0, len(r.Properties))
		for _, n := range slices.Sorted(maps.Keys(r.Properties)) {
			row = append(row, cdc.Field{Name: n, Value: r.Properties[n]})
		}
		out[r.ID] = row
	}
	return nil
}

// Versions returns the updatedAt of the records ids of object (the
// writer's object when empty), read in batches of 100; a record that does
// not exist is absent. It implements syncapi.Versioner.
func (w *Writer) Versions(ctx context.Context, object string, ids []string) (map[string]time.Time, error) {
	if object == "" {
		object = w.object
	}
	out := make(map[string]time.Time, len(ids))
	for chunk := range slices.Chunk(ids, maxBatch) {
		inputs := make([]map[string]string, len(chunk))
		for i, id := range chunk {
			inputs[i] = map[string]string{"id": id}
		}
		body, err := json.Marshal(map[string]any{"inputs": inputs, "properties": []string{"hs_object_id"}})
		if err != nil {
			return nil, err
		}
		var ans struct {
			Results []struct {
				ID        string `json:"id"`
				UpdatedAt string `json:"updatedAt"`
			} `json:"results"`
		}
		op := fmt.Sprintf("read the versions of %d %s", len(chunk), object)
		if _, err := w.call(ctx, http.MethodPost, op, "/"+url.PathEscape(object)+"/batch/read", body, &ans); err != nil {
			return nil, err
		}
		for _, r := range ans.Results {
			if t, err := time.Parse(time.RFC3339Nano, r.UpdatedAt); err == nil {
				out[r.ID] = t
			}
		}
	}
	return out, nil
}
