package webhook

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/vendortest/shopify"
)

// shopifyIntake is the intake of a shopify system configured as cdcd
// configures one (NewConfig defaults), with an in-memory deduper.
func shopifyIntake(t *testing.T) *intake {
	t.Helper()
	cfg := must(NewConfig("shopify"))
	cfg.Secrets = []string{"shpss_secret"}
	sys, err := cfg.System("shopify")
	if err != nil {
		t.Fatal(err)
	}
	acc, reg := &fakeAcceptor{}, prometheus.NewRegistry()
	h, err := NewHandler(HandlerConfig{}, []System{sys}, acc, NewMemoryDeduper(0, 0), zerolog.New(zerolog.NewTestWriter(t)), reg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/{system}", h)
	return &intake{mux: mux, acc: acc, reg: reg}
}

func (in *intake) send(t *testing.T, w shopify.Webhook) {
	t.Helper()
	rec := httptest.NewRecorder()
	in.mux.ServeHTTP(rec, w.Request("https://cdcd.example.com/webhooks/shopify", "shpss_secret"))
	if rec.Code != http.StatusOK {
		t.Fatalf("%s delivery %s: status %d (%q), want 200", w.Topic, w.WebhookID, rec.Code, rec.Body.String())
	}
}

func level(event, webhook string, available int64, at time.Time) shopify.Webhook {
	return shopify.Webhook{Topic: "inventory_levels/update", Shop: "shop.myshopify.com", APIVersion: "2026-04",
		EventID: event, WebhookID: webhook, TriggeredAt: at,
		Body: shopify.InventoryLevelBody(271878346596884015, 24826418, available, at)}
}

// Regression: dedupe keyed on X-Shopify-Webhook-Id let through the
// duplicates Shopify's guide says to catch by X-Shopify-Event-Id (the
// deliveries of one event to two subscriptions have two webhook ids).
func TestShopifyIntakeDedupesByEventID(t *testing.T) {
	t.Parallel()
	in := shopifyIntake(t)
	at := time.Date(2026, 11, 22, 14, 0, 0, 250e6, time.UTC)
	in.send(t, level("ev-1", "wh-a", 5, at))
	in.send(t, level("ev-1", "wh-b", 5, at)) // a second subscription
	in.send(t, level("ev-1", "wh-a", 5, at)) // Shopify's retry
	in.send(t, level("ev-2", "wh-c", 4, at.Add(time.Millisecond)))
	if got := in.acc.changes(); len(got) != 2 {
		t.Fatalf("accepted %d changes, want 2 (one per event)", len(got))
	}
}

// Regression: two updates of one inventory level in one second (a sale)
// took updated_at (whole seconds) as their version and tied, broken by
// random webhook ids; X-Shopify-Triggered-At orders them.
func TestShopifyIntakeSameSecondOrder(t *testing.T) {
	t.Parallel()
	in := shopifyIntake(t)
	first := time.Date(2026, 11, 22, 14, 0, 0, 200e6, time.UTC)
	in.send(t, level("ev-9", "ffff", 7, first))
	in.send(t, level("ev-8", "0000", 6, first.Add(500*time.Millisecond)))
	got := in.acc.changes()
	if len(got) != 2 {
		t.Fatalf("accepted %d changes, want 2", len(got))
	}
	if !got[1].CommitTime.After(got[0].CommitTime) {
		t.Fatalf("second update at %s does not sort after the first at %s", got[1].CommitTime, got[0].CommitTime)
	}
}

// Regression: a products/update of a product with many variants exceeds
// the intake's 1 MiB default and was refused on every retry.
func TestShopifyIntakeLargeProduct(t *testing.T) {
	t.Parallel()
	in := shopifyIntake(t)
	body := shopify.ProductBody(788032119674292922, 4000, time.Now())
	if len(body) <= DefaultMaxBody {
		t.Fatalf("body of %d bytes is not over the default limit", len(body))
	}
	in.send(t, shopify.Webhook{Topic: "products/update", Shop: "shop.myshopify.com", APIVersion: "2026-04",
		EventID: "ev-p", WebhookID: "wh-p", TriggeredAt: time.Now(), Body: body})
	if got := in.acc.changes(); len(got) != 1 || got[0].Table != "products" {
		t.Fatalf("accepted %+v, want the product", got)
	}
}
