package shopify

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
	"github.com/cdcd-dev/cdcd/sinks/vendorhttp"
	"github.com/cdcd-dev/cdcd/sources/imports"
)

var _ imports.Lister = (*Writer)(nil)

// listLimit is the levels one page asks for, REST's most.
const listLimit = 250

// List reads one page of the inventory levels at the system's
// location_id (GET inventory_levels.json?location_ids=<id>&limit=250,
// then the page_info of the Link header's next page, the cursor). A level
// is keyed "<inventory_item_id>:<location_id>" and holds the members
// Shopify answers, as the inventory_levels/update webhook does, so one
// inbound pipeline maps both; UpdatedAt is its updated_at when Shopify
// sends one. Only the object inventory_levels is listed. It implements
// imports.Lister.
func (w *Writer) List(ctx context.Context, object string, _ []string, cursor string) (imports.Page, error) {
	const op = "list shopify inventory levels"
	if object != "" && object != "inventory_levels" {
		return imports.Page{}, cdc.Permanent(fmt.Errorf("%s: shopify systems list inventory_levels, not %q", op, object))
	}
	q := url.Values{"limit": {fmt.Sprint(listLimit)}}
	if cursor != "" {
		q.Set("page_info", cursor) // Shopify refuses any other filter with it
	} else {
		loc, err := id(w.cfg.LocationID, "Location")
		if err != nil {
			return imports.Page{}, cdc.Permanent(errors.New(op + ": set the system's location_id: the levels of that location are listed"))
		}
		q.Set("location_ids", loc)
	}
	body, h, err := w.call(ctx, http.MethodGet, "inventory_levels.json?"+q.Encode(), nil, op)
	if err != nil {
		return imports.Page{}, err
	}
	var ans struct {
		Levels []map[string]json.RawMessage `json:"inventory_levels"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return imports.Page{}, fmt.Errorf("%s: the answer is not a list of levels: %w", op, err)
	}
	var p imports.Page
	for i, lv := range ans.Levels {
		item, err1 := idText(lv["inventory_item_id"])
		loc, err2 := idText(lv["location_id"])
		if err1 != nil || err2 != nil {
			return imports.Page{}, fmt.Errorf("%s: level %d has no inventory_item_id or location_id", op, i)
		}
		r := imports.Record{ID: item + ":" + loc}
		for _, n := range slices.Sorted(maps.Keys(lv)) {
			r.Fields = append(r.Fields, cdc.Field{Name: n, Value: lv[n]})
		}
		var at string
		if json.Unmarshal(lv["updated_at"], &at) == nil {
			r.UpdatedAt, _ = time.Parse(time.RFC3339Nano, at)
		}
		p.Records = append(p.Records, r)
	}
	if next := vendorhttp.NextLink(h); next != "" && len(p.Records) > 0 {
		u, err := url.Parse(next)
		if err != nil || u.Query().Get("page_info") == "" {
			return imports.Page{}, fmt.Errorf("%s: the next page's link has no page_info", op)
		}
		p.Next = u.Query().Get("page_info")
	}
	return p, nil
}

// idText is a JSON number or string id as text.
func idText(v json.RawMessage) (string, error) {
	var n json.Number
	if err := json.Unmarshal(v, &n); err == nil && n != "" {
		return id(n, "")
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", err
	}
	return id(s, "")
}

// Lists reports whether the system lists inventory levels: it needs a
// location_id (config.Lister).
func (c *Config) Lists() bool { return c.LocationID != "" }
