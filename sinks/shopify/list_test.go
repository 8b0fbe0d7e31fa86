package shopify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/sources/imports"
	"github.com/cdcd-dev/cdcd/sources/webhook"
	shop "github.com/cdcd-dev/cdcd/vendortest/shopify"
)

type collect map[string]webhook.Change

func (c collect) Accept(_ context.Context, _ string, changes []webhook.Change) error {
	for _, ch := range changes {
		var id string
		v, _ := ch.Key.Get("id")
		_ = json.Unmarshal(v, &id)
		c[id] = ch
	}
	return nil
}

// TestListInventoryLevels imports the 620 levels of one location from a
// shop whose REST bucket holds 2 calls and which answers the first call
// 503: every level of the location arrives once, keyed as the webhook
// keys it, with the members Shopify sent, and none of another location.
func TestListInventoryLevels(t *testing.T) {
	t.Parallel()
	srv := shop.New(t, token)
	srv.Bucket(2, 10)
	for i := range 620 {
		srv.SetLevel(fmt.Sprint(4000+i), "5", int64(i))
	}
	srv.SetLevel("4000", "6", 99) // another location
	srv.Respond(shop.Response{Status: http.StatusServiceUnavailable, Body: `{"errors":"Service unavailable"}`})
	c := testConfig(srv)
	c.LocationID = "gid://shopify/Location/5"
	w := newWriter(t, c)
	got := collect{}
	err := imports.Run(context.Background(), imports.Config{System: "shop", Object: "inventory_levels", Job: "1", MaxAttempts: 20, BackoffMin: time.Millisecond, BackoffMax: 50 * time.Millisecond},
		w, got, "", func(context.Context, string, int) error { return nil }, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 620 {
		t.Fatalf("%d levels, want 620", len(got))
	}
	for i := range 620 {
		ch, ok := got[fmt.Sprintf("%d:5", 4000+i)]
		avail, _ := ch.After.Get("available")
		if !ok || string(avail) != fmt.Sprint(i) {
			t.Fatalf("level %d: %+v", i, ch.Event)
		}
	}
	if _, err := w.List(context.Background(), "products", nil, ""); err == nil {
		t.Fatal("listed products; only inventory_levels are")
	}
}
