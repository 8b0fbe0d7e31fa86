package hubspot

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/cdcd-dev/cdcd/cdc"
)

// lookup reads back, by the object's unique property, the records that
// hold the inputs' values (batch read with idProperty, 100 values a call).
// It returns their ids by lowercased value; a value no record holds is
// absent. Batch read is served from HubSpot's records, not from the search
// index, so a record created a moment ago is found.
func (p *pass) lookup(ctx context.Context, object string, inputs []input) (map[string]string, error) {
	prop := uniqueProperty(object)
	found := make(map[string]string, len(inputs))
	for chunk := range chunks(inputs) {
		if p.stop != nil {
			return nil, p.stop
		}
		in := make([]map[string]string, len(chunk))
		for i, c := range chunk {
			in[i] = map[string]string{"id": lookupValue(object, c.props)}
		}
		var ans struct {
			Results []struct {
				ID         string         `json:"id"`
				Properties map[string]any `json:"properties"`
			} `json:"results"`
		}
		op := fmt.Sprintf("look up %d %s by %s", len(chunk), object, prop)
		body := map[string]any{"idProperty": prop, "properties": []string{prop}, "inputs": in}
		if _, err := p.w.post(ctx, op, "/"+url.PathEscape(object)+"/batch/read", body, &ans); err != nil {
			if _, ok := cdc.RetryAfterOf(err); ok {
				p.stop = err
			}
			return nil, err
		}
		for _, r := range ans.Results {
			if v := strings.ToLower(strings.TrimSpace(str(r.Properties[prop]))); v != "" && r.ID != "" {
				found[v] = r.ID
			}
		}
	}
	return found, nil
}
