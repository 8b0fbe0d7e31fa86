package hubspot

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/sources/imports"
)

var _ imports.Lister = (*Writer)(nil)

// List reads one page of object's live records (GET
// /crm/v3/objects/{object}?limit=100&after=<cursor>&properties=...), the
// writer's object when empty. The next cursor is HubSpot's
// paging.next.after; no paging means the last page. Fields are as Fetch
// returns them; UpdatedAt is the record's updatedAt. It implements
// imports.Lister, and waits on the account's limiter like every call.
func (w *Writer) List(ctx context.Context, object string, fields []string, cursor string) (imports.Page, error) {
	if object == "" {
		object = w.object
	}
	q := url.Values{"limit": {fmt.Sprint(maxBatch)}}
	if cursor != "" {
		q.Set("after", cursor)
	}
	if len(fields) > 0 {
		q.Set("properties", strings.Join(fields, ","))
	}
	var ans struct {
		Results []struct {
			ID         string                     `json:"id"`
			Properties map[string]json.RawMessage `json:"properties"`
			UpdatedAt  string                     `json:"updatedAt"`
		} `json:"results"`
		Paging *struct {
			Next *struct {
				After string `json:"after"`
			} `json:"next"`
		} `json:"paging"`
	}
	op := "list " + object
	if _, err := w.call(ctx, http.MethodGet, op, "/"+url.PathEscape(object)+"?"+q.Encode(), nil, &ans); err != nil {
		return imports.Page{}, err
	}
	var p imports.Page
	if ans.Paging != nil && ans.Paging.Next != nil {
		p.Next = ans.Paging.Next.After
	}
	p.Records = make([]imports.Record, 0, len(ans.Results))
	for _, r := range ans.Results {
		row := make(cdc.Row, 0, len(r.Properties))
		for _, n := range slices.Sorted(maps.Keys(r.Properties)) {
			row = append(row, cdc.Field{Name: n, Value: r.Properties[n]})
		}
		rec := imports.Record{ID: r.ID, Fields: row}
		rec.UpdatedAt, _ = time.Parse(time.RFC3339Nano, r.UpdatedAt) // absent or odd: unknown
		p.Records = append(p.Records, rec)
	}
	return p, nil
}

// Lists reports that HubSpot systems list their records (config.Lister).
func (c *Config) Lists() bool { return true }
