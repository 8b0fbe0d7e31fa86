package webhook

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/cdc"
)

// checkChanges asserts what every successful Parse promises.
func checkChanges(t *testing.T, changes []Change) {
	t.Helper()
	for i, c := range changes {
		if c.Ignore {
			if c.Kind == "" || c.Key != nil || c.After != nil || c.DeliveryID != "" {
				t.Fatalf("ignored change %d carries more than its kind: %+v", i, c)
			}
			continue
		}
		if c.Source == "" || c.Schema == "" || c.Table == "" || c.DeliveryID == "" {
			t.Fatalf("change %d lacks source, schema, table or delivery id: %+v", i, c)
		}
		switch c.Op {
		case 'c', 'u', 'd':
		default:
			t.Fatalf("change %d: op %q", i, c.Op)
		}
		if c.Key == nil && !c.Refetch {
			t.Fatalf("change %d: nil Key without Refetch", i)
		}
		for _, r := range []struct {
			name string
			row  []cdc.Field
		}{{"key", c.Key}, {"after", c.After}} {
			for _, f := range r.row {
				if !json.Valid(f.Value) {
					t.Fatalf("change %d: %s field %q is not valid JSON: %q", i, r.name, f.Name, f.Value)
				}
			}
		}
	}
}

func addFile(f *testing.F, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
}

func FuzzHubSpotParser(f *testing.F) {
	addFile(f, "testdata/hubspot_events.json")
	f.Add([]byte(`[{"eventId":"1","occurredAt":1,"objectId":"x","subscriptionType":"deal.propertyChange","propertyName":"a","propertyValue":1e400}]`))
	f.Add([]byte(`[{"eventId":1,"occurredAt":1,"subscriptionType":"contact.merge","mergedObjectIds":[null,1,2]}]`))
	p := must(NewHubSpotParser(HubSpotParserConfig{}))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := p.Parse(&Request{Body: body})
		if err == nil {
			checkChanges(t, c)
		}
	})
}

func FuzzShopifyParser(f *testing.F) {
	addFile(f, "testdata/shopify_product.json")
	f.Add([]byte(`{"inventory_item_id":1,"location_id":"2","updated_at":"2026-11-22T09:00:00Z"}`))
	f.Add([]byte(`{"id":1,"id":2}`))
	p := must(NewShopifyParser(ShopifyParserConfig{}))
	topics := []string{"products/create", "products/update", "products/delete", "inventory_levels/update", "orders/create", "orders/updated", "bogus"}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, topic := range topics {
			c, err := p.Parse(shopifyRequest("s", topic, string(body)))
			if err == nil {
				checkChanges(t, c)
			}
		}
	})
}

func FuzzSalesforceParser(f *testing.F) {
	f.Add([]byte(`{"ChangeEventHeader":{"entityName":"Contact","recordIds":["003A","003B"],"changeType":"UPDATE",` + sfHeader + `,"changedFields":["Email","MailingAddress.City"],"nulledFields":["Phone"],"diffFields":["Description"]},"Email":"a@b.c","MailingAddress":{"City":"X"}}`))
	f.Add([]byte(`[{"data":{"payload":{"ChangeEventHeader":{"entityName":"Contact","recordIds":["003*"],"changeType":"GAP_OVERFLOW",` + sfHeader + `}}}}]`))
	f.Add([]byte(`{"ChangeEventHeader":{"entityName":"Contact","recordIds":["003A"],"changeType":"CREATE",` + sfHeader + `},"Name":"x","Name":"y"}`))
	f.Add([]byte(`{"replayId":1,"payload":{"ChangeEventHeader":{"entityName":"Contact","recordIds":["003A"],"changeType":"UPDATE",` + sfHeader + `,"changedFields":["0x1E","5-0x3"],"nulledFields":["0x4"],"diffFields":["0x8"]},"Email":"a@b.c","Phone":null,"Description":"--- \n+++ x","MailingAddress":{"Street":"s","City":null}}}`))
	p := must(NewSalesforceParser(SalesforceParserConfig{}))
	withSchema := sfParser(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		if c, err := withSchema.Parse(&Request{Body: body}); err == nil {
			checkChanges(t, c)
		}
		c, err := p.Parse(&Request{Body: body})
		if err == nil {
			checkChanges(t, c)
		}
	})
}

func FuzzJSONParser(f *testing.F) {
	f.Add([]byte(`{"id":"evt_1QxYz2","type":"customer.updated","created":1763819940,"data":{"object":{"id":"cus_R4nd0m","email":"a@b.c","metadata":{"tags":[1,"x",null]}}}}`))
	f.Add([]byte(`[{"id":1,"type":"customer.deleted","created":"2026-11-22T14:00:00Z","data":{"object":{"id":2}}}]`))
	p := must(NewJSONParser(stripeLike))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := p.Parse(&Request{Body: body})
		if err == nil {
			checkChanges(t, c)
		}
	})
}

func FuzzSalesforceBitmap(f *testing.F) {
	f.Add(contactSchema.Avro(), "0x1E,5-0x3")
	f.Add([]byte(`{"type":"record","name":"A","fields":[{"name":"x","type":["null","A"]}]}`), "1-0xF")
	f.Fuzz(func(t *testing.T, schema []byte, bitmaps string) {
		r, err := parseAvroSchema(schema)
		if err != nil {
			return
		}
		names, err := r.decodeBitmap(strings.Split(bitmaps, ","))
		if err == nil && len(names) > 4*len(bitmaps) {
			t.Fatalf("%d names from %q", len(names), bitmaps)
		}
	})
}
