package hubspot

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

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
