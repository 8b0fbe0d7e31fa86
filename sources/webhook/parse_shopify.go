package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

// ShopifyParserConfig configures a ShopifyParser.
type ShopifyParserConfig struct {
	// System is Source and Schema of the changes; default "shopify".
	System string `yaml:"system"`
}

// Validate reports every problem, each prefixed with its field path.
func (c *ShopifyParserConfig) Validate() error { return nil }

// ShopifyParser reads Shopify webhook deliveries, one resource per request,
// named by the X-Shopify-Topic header. After holds the resource's top-level
// members in document order, values as sent (nested objects and arrays
// included). Key is {"id": "<id>"}; an inventory level, which has no id of
// its own, is keyed "<inventory_item_id>:<location_id>". CommitTime is
// X-Shopify-Triggered-At, which has nanoseconds, else updated_at, which has
// whole seconds: two updates of one inventory level in one second (routine
// during a sale) must apply in the order they happened. DeliveryID is
// "event/<X-Shopify-Event-Id>/<topic>", the same on every delivery of one
// event, else X-Shopify-Webhook-Id (see ShopifyVerifier.DeliveryID).
type ShopifyParser struct {
	system string
}

type shopifyTopic struct {
	table string
	op    cdc.Op
}

var shopifyTopics = map[string]shopifyTopic{
	"products/create":         {"products", cdc.OpCreate},
	"products/update":         {"products", cdc.OpUpdate},
	"products/delete":         {"products", cdc.OpDelete},
	"orders/create":           {"orders", cdc.OpCreate},
	"orders/updated":          {"orders", cdc.OpUpdate},
	"orders/delete":           {"orders", cdc.OpDelete},
	"inventory_levels/update": {"inventory_levels", cdc.OpUpdate},
}

// NewShopifyParser validates cfg and returns its parser.
func NewShopifyParser(cfg ShopifyParserConfig) (*ShopifyParser, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sys := cfg.System
	if sys == "" {
		sys = "shopify"
	}
	return &ShopifyParser{system: sys}, nil
}

// Parse implements Parser.
func (p *ShopifyParser) Parse(r *Request) ([]Change, error) {
	name := r.Header.Get(HeaderShopifyTopic)
	if name == "" {
		return nil, fmt.Errorf("shopify delivery: no %s header", HeaderShopifyTopic)
	}
	topic, ok := shopifyTopics[name]
	if !ok {
		return nil, fmt.Errorf("shopify delivery: unsupported topic %q", truncate([]byte(name)))
	}
	did := shopifyDeliveryID(r)
	if did == "" {
		return nil, fmt.Errorf("shopify delivery: no %s or %s header", HeaderShopifyEventID, HeaderShopifyWebhookID)
	}
	row, err := objectRow(r.Body, nil)
	if err != nil {
		return nil, fmt.Errorf("shopify %s: body: %w", name, err)
	}
	id, err := shopifyID(row, topic.table)
	if err != nil {
		return nil, fmt.Errorf("shopify %s: %w", name, err)
	}
	at, err := shopifyTime(row, r.Header.Get(HeaderShopifyTriggered))
	if err != nil {
		return nil, fmt.Errorf("shopify %s: %w", name, err)
	}
	c := Change{
		Event: cdc.Event{
			Op:         topic.op,
			Source:     p.system,
			Schema:     p.system,
			Table:      topic.table,
			Key:        keyRow(id),
			CommitTime: at,
			DeliveryID: did,
		},
		Kind: name,
	}
	if topic.op != cdc.OpDelete {
		c.After = row
	}
	return []Change{c}, nil
}

func shopifyID(row cdc.Row, table string) (string, error) {
	if table == "inventory_levels" {
		item, err := memberID(row, "inventory_item_id")
		if err != nil {
			return "", err
		}
		loc, err := memberID(row, "location_id")
		if err != nil {
			return "", err
		}
		return item + ":" + loc, nil
	}
	return memberID(row, "id")
}

func memberID(row cdc.Row, name string) (string, error) {
	v, ok := row.Get(name)
	if !ok {
		return "", fmt.Errorf("no %q member", name)
	}
	id, err := idText(v)
	if err != nil {
		return "", fmt.Errorf("%q: %w", name, err)
	}
	return id, nil
}

// shopifyTime reads the triggered-at header, else updated_at; neither
// gives the zero time.
func shopifyTime(row cdc.Row, triggered string) (time.Time, error) {
	if triggered != "" {
		t, err := time.Parse(time.RFC3339Nano, triggered)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s %q is not an RFC 3339 time", HeaderShopifyTriggered, truncate([]byte(triggered)))
		}
		return t.UTC(), nil
	}
	if v, ok := row.Get("updated_at"); ok && !cdc.IsNull(v) {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return time.Time{}, errors.New(`"updated_at" is not a string`)
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf(`"updated_at" %q is not an RFC 3339 time`, truncate([]byte(s)))
		}
		return t.UTC(), nil
	}
	return time.Time{}, nil
}
