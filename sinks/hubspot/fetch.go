package hubspot

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
)

var _ delivery.Fetcher = (*Writer)(nil)

// Fetch reads one record back (GET /crm/v3/objects/{object}/{id}) with the
// named properties, for webhooks that carry one property or none. The row
// holds the properties HubSpot returned, as strings (or null), sorted by
// name. A 404 wraps delivery.ErrNotFound.
func (w *Writer) Fetch(ctx context.Context, object, id string, fields []string) (cdc.Row, error) {
	if object == "" {
		object = w.object
	}
	q := url.Values{}
	if len(fields) > 0 {
		q.Set("properties", strings.Join(fields, ","))
	}
	q.Set("archived", "false")
	path := "/" + url.PathEscape(object) + "/" + url.PathEscape(id) + "?" + q.Encode()
	var ans struct {
		ID         string                     `json:"id"`
		Properties map[string]json.RawMessage `json:"properties"`
	}
	op := "read " + object + " " + id
	status, err := w.call(ctx, http.MethodGet, op, path, nil, &ans)
	switch {
	case status == http.StatusNotFound:
		return nil, fmt.Errorf("%s: %w", op, delivery.ErrNotFound)
	case err != nil:
		return nil, err
	}
	names := make([]string, 0, len(ans.Properties))
	for n := range ans.Properties {
		names = append(names, n)
	}
	slices.Sort(names)
	row := make(cdc.Row, 0, len(names))
	for _, n := range names {
		row = append(row, cdc.Field{Name: n, Value: ans.Properties[n]})
	}
	return row, nil
}

// Versions returns the updatedAt of the records ids of object (the
// writer's object when empty), read in batches of 100; a record that does
// not exist is absent. It implements delivery.Versioner.
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
