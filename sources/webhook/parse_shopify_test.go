package webhook

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

func TestShopifyParse(t *testing.T) {
	t.Parallel()
	product, err := os.ReadFile("testdata/shopify_product.json")
	if err != nil {
		t.Fatal(err)
	}
	p := must(NewShopifyParser(ShopifyParserConfig{}))
	const did = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
	triggered := time.Date(2026, 11, 22, 14, 0, 0, 123e6, time.UTC)
	base := func(table string, op cdc.Op, kind, id string, at time.Time) Change {
		return Change{Kind: kind, Event: cdc.Event{Op: op, Source: "shopify", Schema: "shopify", Table: table,
			Key: row("id", `"`+id+`"`), CommitTime: at, DeliveryID: did}}
	}
	productRow := row(
		"id", `788032119674292922`, "title", `"Example T-Shirt"`, "body_html", `"<b>Soft</b>"`,
		"vendor", `"Acme"`, "product_type", `"Shirts"`, "created_at", `"2026-11-20T09:00:00-05:00"`,
		"handle", `"example-t-shirt"`, "updated_at", `"2026-11-22T08:59:30-05:00"`, "status", `"active"`,
		"tags", `"example, mens, t-shirt"`,
		"variants", `[{"id":642667041472713922,"title":"Small","price":"19.99","sku":"TS-S","inventory_item_id":457924702}]`,
		"admin_graphql_api_id", `"gid://shopify/Product/788032119674292922"`,
	)
	withAfter := func(c Change, r cdc.Row) Change { c.After = r; return c }
	tests := []struct {
		topic, body string
		want        Change
	}{
		{"products/create", string(product), withAfter(base("products", cdc.OpCreate, "products/create", "788032119674292922", triggered), productRow)},
		{"products/update", string(product), withAfter(base("products", cdc.OpUpdate, "products/update", "788032119674292922", triggered), productRow)},
		{"products/delete", `{"id":788032119674292922}`, base("products", cdc.OpDelete, "products/delete", "788032119674292922", triggered)},
		{"orders/create", `{"id":820982911946154508,"email":"jon@example.com","total_price":"598.94","updated_at":null}`,
			withAfter(base("orders", cdc.OpCreate, "orders/create", "820982911946154508", triggered),
				row("id", `820982911946154508`, "email", `"jon@example.com"`, "total_price", `"598.94"`, "updated_at", `null`))},
		{"orders/updated", `{ "id" : "820982911946154508", "updated_at" : "2026-11-22T14:01:00Z" }`,
			withAfter(base("orders", cdc.OpUpdate, "orders/updated", "820982911946154508", triggered),
				row("id", `"820982911946154508"`, "updated_at", `"2026-11-22T14:01:00Z"`))},
		{"inventory_levels/update", `{"inventory_item_id":271878346596884015,"location_id":24826418,"available":6,"updated_at":"2026-11-22T09:00:00-05:00","admin_graphql_api_id":"gid://shopify/InventoryLevel/24826418?inventory_item_id=271878346596884015"}`,
			withAfter(base("inventory_levels", cdc.OpUpdate, "inventory_levels/update", "271878346596884015:24826418", triggered),
				row("inventory_item_id", `271878346596884015`, "location_id", `24826418`, "available", `6`,
					"updated_at", `"2026-11-22T09:00:00-05:00"`, "admin_graphql_api_id", `"gid://shopify/InventoryLevel/24826418?inventory_item_id=271878346596884015"`))},
	}
	for _, tt := range tests {
		t.Run(tt.topic, func(t *testing.T) {
			t.Parallel()
			got, err := p.Parse(shopifyRequest("s", tt.topic, tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("got %d changes", len(got))
			}
			g := got[0]
			if g.Op != tt.want.Op || g.Table != tt.want.Table || g.Kind != tt.want.Kind || g.DeliveryID != tt.want.DeliveryID ||
				!g.CommitTime.Equal(tt.want.CommitTime) || !reflect.DeepEqual(g.Key, tt.want.Key) || g.Source != "shopify" || g.Schema != "shopify" {
				t.Errorf("got  %+v\nwant %+v", g.Event, tt.want.Event)
			}
			if len(g.After) != len(tt.want.After) {
				t.Fatalf("After has %d fields, want %d: %s", len(g.After), len(tt.want.After), g.After)
			}
			for i := range g.After {
				if g.After[i].Name != tt.want.After[i].Name || string(g.After[i].Value) != string(tt.want.After[i].Value) {
					t.Errorf("After[%d] = %s: %s, want %s: %s", i, g.After[i].Name, g.After[i].Value, tt.want.After[i].Name, tt.want.After[i].Value)
				}
			}
		})
	}
}

func TestShopifyParseErrors(t *testing.T) {
	t.Parallel()
	p := must(NewShopifyParser(ShopifyParserConfig{}))
	tests := []struct{ name, topic, body, want string }{
		{"unsupported topic", "customers/create", `{"id":1}`, `unsupported topic "customers/create"`},
		{"not json", "orders/create", `{"id":`, "shopify orders/create: body:"},
		{"array", "orders/create", `[{"id":1}]`, "body: not a JSON object"},
		{"trailing", "orders/create", `{"id":1} {}`, "data after the JSON object"},
		{"duplicate", "orders/create", `{"id":1,"id":2}`, `member "id" appears twice`},
		{"no id", "orders/create", `{"name":"#1001"}`, `no "id" member`},
		{"bad id", "orders/create", `{"id":{}}`, `"id": id {} is not an integer or a string`},
		{"null id", "products/delete", `{"id":null}`, `"id": is empty`},
		{"no location", "inventory_levels/update", `{"inventory_item_id":1}`, `no "location_id" member`},
		{"bad updated_at", "orders/updated", `{"id":1,"updated_at":"yesterday"}`, `"updated_at" "yesterday" is not an RFC 3339 time`},
		{"numeric updated_at", "orders/updated", `{"id":1,"updated_at":5}`, `"updated_at" is not a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := shopifyRequest("s", tt.topic, tt.body)
			if strings.Contains(tt.name, "updated_at") {
				r = without(r, HeaderShopifyTriggered) // else triggered-at orders
			}
			got, err := p.Parse(r)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse = %v, %v; want error containing %q", got, err, tt.want)
			}
		})
	}
	for _, h := range []string{HeaderShopifyTopic, HeaderShopifyWebhookID} {
		_, err := p.Parse(without(shopifyRequest("s", "orders/create", `{"id":1}`), h))
		if err == nil || !strings.Contains(err.Error(), h+" header") {
			t.Errorf("Parse without %s = %v", h, err)
		}
	}
	_, err := p.Parse(withHeader(shopifyRequest("s", "products/delete", `{"id":1}`), HeaderShopifyTriggered, "now"))
	if err == nil || !strings.Contains(err.Error(), "X-Shopify-Triggered-At") {
		t.Errorf("Parse with a bad triggered-at = %v", err)
	}
}
