package salesforce

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
)

// Fetch reads a record back by its Id with the fields asked (all when
// none), for a Change Data Capture event that named too little. It
// implements delivery.Fetcher; a record that does not exist is
// delivery.ErrNotFound.
func (w *Writer) Fetch(ctx context.Context, object, id string, fields []string) (cdc.Row, error) {
	if object == "" {
		object = w.cfg.Object
	}
	path := "/sobjects/" + url.PathEscape(object) + "/" + url.PathEscape(id)
	if len(fields) > 0 {
		path += "?fields=" + url.QueryEscape(strings.Join(fields, ","))
	}
	op := "read " + object + " " + id
	status, h, resp, err := w.call(ctx, http.MethodGet, path, nil)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: %w", op, err)
	case status == http.StatusNotFound:
		return nil, fmt.Errorf("%s: %w", op, delivery.ErrNotFound)
	case status != http.StatusOK:
		return nil, w.statusError(op, status, h, resp)
	}
	var rec map[string]json.RawMessage
	if err := json.Unmarshal(resp, &rec); err != nil {
		return nil, fmt.Errorf("%s: the answer is not a record: %w", op, err)
	}
	delete(rec, "attributes")
	row := make(cdc.Row, 0, len(rec))
	for _, name := range slices.Sorted(maps.Keys(rec)) {
		if len(fields) == 0 || slices.Contains(fields, name) {
			row = append(row, cdc.Field{Name: name, Value: rec[name]})
		}
	}
	return row, nil
}
