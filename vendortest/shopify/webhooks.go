package shopify

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Webhook is one webhook delivery as Shopify sends it ("About webhooks",
// "Ignore duplicate webhooks", shopify.dev/docs/apps/build/webhooks):
// headers X-Shopify-Topic, X-Shopify-Hmac-SHA256 (base64 HMAC-SHA256 of
// the raw body), X-Shopify-Shop-Domain, X-Shopify-API-Version,
// X-Shopify-Webhook-Id (one per delivery, kept across Shopify's retries of
// it), X-Shopify-Event-Id (one per event: the same on the deliveries of
// several subscriptions to a topic and on duplicates) and
// X-Shopify-Triggered-At (when the event fired, to the nanosecond; bodies'
// updated_at have whole seconds).
type Webhook struct {
	Topic, Shop, APIVersion string
	EventID, WebhookID      string
	TriggeredAt             time.Time
	Body                    []byte
}

// Request returns the delivery to url, signed with secret.
func (w Webhook) Request(url, secret string) *http.Request {
	r, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(w.Body))
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(w.Body)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Shopify-Topic", w.Topic)
	r.Header.Set("X-Shopify-Hmac-SHA256", base64.StdEncoding.EncodeToString(m.Sum(nil)))
	r.Header.Set("X-Shopify-Shop-Domain", w.Shop)
	r.Header.Set("X-Shopify-API-Version", w.APIVersion)
	r.Header.Set("X-Shopify-Webhook-Id", w.WebhookID)
	if w.EventID != "" {
		r.Header.Set("X-Shopify-Event-Id", w.EventID)
	}
	r.Header.Set("X-Shopify-Triggered-At", w.TriggeredAt.UTC().Format(time.RFC3339Nano))
	return r
}

// InventoryLevelBody is an inventory_levels/update payload; updated_at has
// whole seconds, as Shopify's do.
func InventoryLevelBody(item, location, available int64, updatedAt time.Time) []byte {
	b, _ := json.Marshal(map[string]any{
		"inventory_item_id": item, "location_id": location, "available": available,
		"updated_at":           updatedAt.Truncate(time.Second).Format(time.RFC3339),
		"admin_graphql_api_id": fmt.Sprintf("gid://shopify/InventoryLevel/%d?inventory_item_id=%d", location, item),
	})
	return b
}

// ProductBody is a products/create or products/update payload with n
// variants: a product with many variants and options makes a body of
// several MiB.
func ProductBody(id int64, variants int, updatedAt time.Time) []byte {
	vs := make([]any, variants)
	for i := range vs {
		vs[i] = map[string]any{"id": id*10000 + int64(i), "product_id": id, "title": "Size " + strconv.Itoa(i), "price": "19.99",
			"sku": fmt.Sprintf("SKU-%d-%d", id, i), "inventory_item_id": id*100000 + int64(i), "inventory_quantity": i,
			"option1": "Size " + strconv.Itoa(i), "option2": "Colour with a long descriptive name", "option3": "Material with a long descriptive name",
			"barcode": fmt.Sprintf("%013d", i), "weight": 0.2, "weight_unit": "kg", "requires_shipping": true, "taxable": true,
			"admin_graphql_api_id": fmt.Sprintf("gid://shopify/ProductVariant/%d", id*10000+int64(i)),
			"created_at":           "2026-11-20T09:00:00-05:00", "updated_at": updatedAt.Truncate(time.Second).Format(time.RFC3339)}
	}
	b, _ := json.Marshal(map[string]any{"id": id, "title": "Example T-Shirt", "vendor": "Acme", "status": "active",
		"updated_at": updatedAt.Truncate(time.Second).Format(time.RFC3339), "variants": vs,
		"admin_graphql_api_id": fmt.Sprintf("gid://shopify/Product/%d", id)})
	return b
}
