package shopify

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/syncapi"
	shop "github.com/cdcd-dev/cdcd/vendortest/shopify"
)

const token = "shpat_secret_token"

func testConfig(srv *shop.Server) *Config {
	c := DefaultConfig()
	c.BaseURL = srv.URL()
	c.AccessToken = token
	c.LocationID = "222"
	c.Rate = ratelimit.Rate{Requests: 100, Per: time.Second}
	return c
}

func newWriter(t *testing.T, cfg *Config) *Writer {
	t.Helper()
	w, err := New("shop", cfg, config.Env{Log: zerolog.New(zerolog.NewTestWriter(t)), Limiters: ratelimit.NewLimiters()})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func record(op cdc.Op, fields map[string]any) syncapi.Record {
	return syncapi.Record{
		Event: &cdc.Event{Op: op, Schema: "public", Table: "stock", Pos: cdc.Position{CommitLSN: 0x20, Index: 3}},
		Op:    op, Key: `{"sku":"A-1"}`, Fields: fields,
	}
}

func write(t *testing.T, w *Writer, r syncapi.Record) syncapi.Result {
	t.Helper()
	res, err := w.Write(context.Background(), []syncapi.Record{r})
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

func stock(t *testing.T, srv *shop.Server) int64 {
	t.Helper()
	v, ok := srv.Level("111", "222")
	if !ok {
		t.Fatal("item 111 is not stocked at location 222")
	}
	return v
}

func TestCompareAndSet(t *testing.T) {
	t.Parallel()
	for _, version := range []string{"2026-04", "2026-01", "2025-07"} {
		t.Run(version, func(t *testing.T) {
			t.Parallel()
			srv := shop.New(t, token)
			srv.SetLevel("111", "222", 5)
			cfg := testConfig(srv)
			cfg.APIVersion = version
			w := newWriter(t, cfg)

			res := write(t, w, record(cdc.OpUpdate, map[string]any{"inventory_item_id": 111.0, "available": 3.0, "previous_available": 5.0}))
			if res.Err != nil || res.ExternalID != "111" || res.Version == "" {
				t.Fatalf("result %+v", res)
			}
			if got := stock(t, srv); got != 3 {
				t.Fatalf("level %d, want 3", got)
			}
			req := srv.Requests()[0]
			if req.Path != "graphql.json" || req.Version != version || req.Token != token {
				t.Errorf("request %+v", req)
			}
			if idem := strings.Contains(string(req.Body), "@idempotent"); idem != (version >= "2026-01") {
				t.Errorf("@idempotent sent: %v", idem)
			}

			// A sale took the level to 2; a sync still expecting 3 must not
			// overwrite it.
			srv.SetLevel("111", "222", 2)
			res = write(t, w, record(cdc.OpUpdate, map[string]any{"inventory_item_id": "gid://shopify/InventoryItem/111", "available": 7.0, "previous_available": 3.0}))
			if !errors.Is(res.Err, ErrCompareMismatch) || !cdc.IsPermanent(res.Err) {
				t.Fatalf("stale write: %v, want a permanent ErrCompareMismatch", res.Err)
			}
			if got := stock(t, srv); got != 2 {
				t.Errorf("stale write changed the level to %d", got)
			}
		})
	}
}

// Regression: a retry after a lost response used to be able to report a
// false mismatch, since the first attempt had already moved the level.
func TestRetryOfAppliedChangeIsNotAMismatch(t *testing.T) {
	t.Parallel()
	srv := shop.New(t, token)
	srv.SetLevel("111", "222", 5)
	w := newWriter(t, testConfig(srv))
	r := record(cdc.OpUpdate, map[string]any{"inventory_item_id": "111", "available": 3.0, "previous_available": 5.0})
	for attempt := range 2 {
		if res := write(t, w, r); res.Err != nil {
			t.Fatalf("attempt %d: %v", attempt, res.Err)
		}
	}
	if got := stock(t, srv); got != 3 {
		t.Errorf("level %d, want 3", got)
	}
}

func TestPreviousQuantity(t *testing.T) {
	t.Parallel()
	srv := shop.New(t, token)
	srv.SetLevel("111", "222", 5)
	cfg := testConfig(srv)
	cfg.CompareColumn = "qty"
	w := newWriter(t, cfg)

	// From the before image when the record lacks compare_field.
	r := record(cdc.OpUpdate, map[string]any{"inventory_item_id": 111.0, "available": 4.0})
	r.Event.Before = cdc.Row{{Name: "sku", Value: json.RawMessage(`"A-1"`)}, {Name: "qty", Value: json.RawMessage(`5`)}}
	if res := write(t, w, r); res.Err != nil || stock(t, srv) != 4 {
		t.Fatalf("%v, level %d", res.Err, stock(t, srv))
	}

	// An update with no previous quantity anywhere is refused unsent.
	n := len(srv.Requests())
	r = record(cdc.OpUpdate, map[string]any{"inventory_item_id": 111.0, "available": 9.0})
	if res := write(t, w, r); !cdc.IsPermanent(res.Err) || errors.Is(res.Err, ErrCompareMismatch) {
		t.Errorf("got %v, want a permanent error that is not a mismatch", res.Err)
	}
	// A create has nothing to compare with and sets.
	if res := write(t, w, record(cdc.OpCreate, map[string]any{"inventory_item_id": 111.0, "available": 9.0})); res.Err != nil {
		t.Fatal(res.Err)
	}
	if got := stock(t, srv); got != 9 || len(srv.Requests()) != n+1 {
		t.Errorf("level %d after %d requests", got, len(srv.Requests())-n)
	}
}

func TestSetMode(t *testing.T) {
	t.Parallel()
	srv := shop.New(t, token)
	cfg := testConfig(srv)
	cfg.Mode = ModeSet
	cfg.LocationID, cfg.LocationField = "", "location"
	cfg.ItemField, cfg.AvailableField = "item", "qty"
	w := newWriter(t, cfg)
	res := write(t, w, record(cdc.OpUpdate, map[string]any{"item": "111", "qty": json.Number("12"), "location": 222.0}))
	if res.Err != nil || res.Version == "" {
		t.Fatalf("result %+v", res)
	}
	req := srv.Requests()[0]
	var body map[string]any
	json.Unmarshal(req.Body, &body)
	if req.Path != "inventory_levels/set.json" || req.Token != token ||
		body["location_id"] != 222.0 || body["inventory_item_id"] != 111.0 || body["available"] != 12.0 {
		t.Errorf("request %s %s", req.Path, req.Body)
	}
	if got := stock(t, srv); got != 12 {
		t.Errorf("level %d, want 12", got)
	}
}

// Sustained writes stay inside the REST bucket instead of draining it
// into 429s.
func TestBackOffBeforeTheBucketFills(t *testing.T) {
	t.Parallel()
	srv := shop.New(t, token)
	srv.Bucket(10, 10)
	cfg := testConfig(srv)
	cfg.Mode = ModeSet
	// The leak rate, with bursts the bucket cannot absorb.
	cfg.Rate = ratelimit.Rate{Requests: 20, Per: 2 * time.Second}
	w := newWriter(t, cfg)
	for i := range 14 {
		if res := write(t, w, record(cdc.OpUpdate, map[string]any{"inventory_item_id": 111.0, "available": float64(i)})); res.Err != nil {
			t.Fatalf("write %d: %v", i, res.Err)
		}
	}
}

func TestClassifiesAnswers(t *testing.T) {
	t.Parallel()
	throttled := `{"errors":[{"message":"Throttled","extensions":{"code":"THROTTLED"}}],
		"extensions":{"cost":{"requestedQueryCost":10,"throttleStatus":{"maximumAvailable":2000,"currentlyAvailable":0,"restoreRate":4}}}}`
	for _, tc := range []struct {
		name      string
		resp      shop.Response
		permanent bool
		after     time.Duration
	}{
		{"429", shop.Response{Status: 429, Body: `{"errors":"Exceeded"}`, Header: http.Header{"Retry-After": {"2.0"}}}, false, 2 * time.Second},
		{"throttled", shop.Response{Status: 200, Body: throttled}, false, 3 * time.Second},
		{"unauthorized", shop.Response{Status: 401, Body: `{"errors":"[API] Invalid API key"}`}, false, holdFor},
		{"frozen", shop.Response{Status: 402, Body: `{"errors":"Unavailable Shop"}`}, false, holdFor},
		{"locked", shop.Response{Status: 423, Body: `{"errors":"Locked"}`}, false, holdFor},
		{"not found", shop.Response{Status: 404, Body: `{"errors":"Not Found"}`}, true, 0},
		{"access denied", shop.Response{Status: 200, Body: `{"errors":[{"message":"Access denied","extensions":{"code":"ACCESS_DENIED"}}]}`}, true, 0},
		{"server error", shop.Response{Status: 502}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := shop.New(t, token)
			srv.SetLevel("111", "222", 5)
			srv.Respond(tc.resp)
			res := write(t, newWriter(t, testConfig(srv)), record(cdc.OpCreate, map[string]any{"inventory_item_id": 111.0, "available": 1.0}))
			if res.Err == nil || cdc.IsPermanent(res.Err) != tc.permanent || errors.Is(res.Err, ErrCompareMismatch) {
				t.Fatalf("error %v, want permanent %v", res.Err, tc.permanent)
			}
			if d, _ := cdc.RetryAfterOf(res.Err); d != tc.after {
				t.Errorf("retry after %v, want %v", d, tc.after)
			}
			if strings.Contains(res.Err.Error(), token) {
				t.Error("error quotes the access token")
			}
		})
	}
}

// Regression: a token Shopify no longer accepts (rotated) dead-lettered
// the whole feed; the changes are held until the token is replaced.
func TestWrongTokenIsHeld(t *testing.T) {
	t.Parallel()
	srv := shop.New(t, "another-token")
	srv.SetLevel("111", "222", 5)
	res := write(t, newWriter(t, testConfig(srv)), record(cdc.OpCreate, map[string]any{"inventory_item_id": 111.0, "available": 1.0}))
	if d, ok := cdc.RetryAfterOf(res.Err); !ok || d != holdFor || cdc.IsPermanent(res.Err) || !strings.Contains(res.Err.Error(), "access_token") {
		t.Fatalf("got %v, want held for %v naming access_token", res.Err, holdFor)
	}
}

func TestDeletes(t *testing.T) {
	t.Parallel()
	srv := shop.New(t, token)
	srv.SetLevel("111", "222", 5)
	cfg := testConfig(srv)
	w := newWriter(t, cfg)
	del := record(cdc.OpDelete, map[string]any{"inventory_item_id": 111.0, "previous_available": 5.0})
	if res := write(t, w, del); res.Err != nil || len(srv.Requests()) != 0 {
		t.Fatalf("ignored delete: %v, %d requests", res.Err, len(srv.Requests()))
	}
	cfg.OnDelete = "zero"
	if res := write(t, newWriter(t, cfg), del); res.Err != nil || stock(t, srv) != 0 {
		t.Fatalf("zeroing delete: %v, level %d", res.Err, stock(t, srv))
	}
}

func TestRecordErrorsDoNotQuoteValues(t *testing.T) {
	t.Parallel()
	srv := shop.New(t, token)
	w := newWriter(t, testConfig(srv))
	res := write(t, w, record(cdc.OpCreate, map[string]any{"inventory_item_id": 111.0, "available": "lots-secret"}))
	if !cdc.IsPermanent(res.Err) || strings.Contains(res.Err.Error(), "lots-secret") {
		t.Errorf("got %v", res.Err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	c.APIVersion = "2026-4"
	c.Mode = "overwrite"
	c.OnDelete = "drop"
	err := c.Validate()
	for _, path := range []string{"shop", "api_version", "access_token", "mode", "location_id", "on_delete"} {
		if err == nil || !strings.Contains(err.Error(), path+":") {
			t.Errorf("no problem reported for %s in %v", path, err)
		}
	}
}
