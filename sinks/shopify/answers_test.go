package shopify

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncapi"
	shop "github.com/cdcd-dev/cdcd/vendortest/shopify"
)

func keyOf(t *testing.T, r shop.Request) string {
	t.Helper()
	var body struct {
		Variables struct {
			Key string `json:"idempotencyKey"`
		} `json:"variables"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	return body.Variables.Key
}

// Regression: IDEMPOTENCY_CONCURRENT_REQUEST (a retry while the first
// attempt still runs) was a permanent user error. It is retried with the
// same key, which then returns the first attempt's outcome.
func TestIdempotencyConcurrentRequest(t *testing.T) {
	t.Parallel()
	srv := shop.New(t, token)
	srv.SetLevel("111", "222", 5)
	w := newWriter(t, testConfig(srv))
	rec := record(cdc.OpUpdate, map[string]any{"inventory_item_id": 111.0, "available": 3.0, "previous_available": 5.0})
	srv.SlowNext(2 * time.Second) // long enough for the second attempt to arrive meanwhile, on a loaded machine too
	var wg sync.WaitGroup
	var first syncapi.Result
	wg.Go(func() { first = write(t, w, rec) })
	deadline := time.Now().Add(5 * time.Second)
	for len(srv.Requests()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first attempt never arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
	second := write(t, w, rec)
	if d, ok := cdc.RetryAfterOf(second.Err); !ok || cdc.IsPermanent(second.Err) || d > 5*time.Second {
		t.Fatalf("concurrent attempt: %v, want a retry within seconds", second.Err)
	}
	wg.Wait()
	if first.Err != nil {
		t.Fatalf("first attempt: %v", first.Err)
	}
	if again := write(t, w, rec); again.Err != nil {
		t.Fatalf("retry after the first attempt finished: %v, want its outcome", again.Err)
	}
	if got := stock(t, srv); got != 3 {
		t.Fatalf("stock %d, want 3", got)
	}
	reqs := srv.Requests()
	if keyOf(t, reqs[0]) != keyOf(t, reqs[1]) || keyOf(t, reqs[1]) != keyOf(t, reqs[2]) {
		t.Error("the retries did not carry the first attempt's key")
	}
}

// Regression: IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED ("retry with a new key")
// dead-lettered the change, whose key never changed.
func TestIdempotencyPreviousAttemptFailed(t *testing.T) {
	t.Parallel()
	srv := shop.New(t, token)
	srv.SetLevel("111", "222", 5)
	w := newWriter(t, testConfig(srv))
	rec := record(cdc.OpUpdate, map[string]any{"inventory_item_id": 111.0, "available": 3.0, "previous_available": 5.0})
	srv.FailNext()
	for i := range 2 { // the failure inside Shopify, then the spent key
		if res := write(t, w, rec); res.Err == nil || cdc.IsPermanent(res.Err) {
			t.Fatalf("attempt %d: %v, want transient", i, res.Err)
		}
	}
	if res := write(t, w, rec); res.Err != nil {
		t.Fatalf("attempt with a new key: %v", res.Err)
	}
	if got := stock(t, srv); got != 3 {
		t.Fatalf("stock %d, want 3", got)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 || keyOf(t, reqs[0]) != keyOf(t, reqs[1]) || keyOf(t, reqs[1]) == keyOf(t, reqs[2]) {
		t.Errorf("%d requests; want the spent key twice, then a new one", len(reqs))
	}
}

// Regression: a pinned API version that Shopify retired is served as the
// oldest supported one (here 2026-04, which requires @idempotent and
// changeFromQuantity); the pre-2026-01 shape was refused and the whole
// feed dead-lettered. cdcd follows the version Shopify says it served.
func TestAPIVersionFallForward(t *testing.T) {
	t.Parallel()
	srv := shop.New(t, token)
	srv.SetLevel("111", "222", 5)
	srv.Oldest("2026-04")
	cfg := testConfig(srv)
	cfg.APIVersion = "2025-07"
	w := newWriter(t, cfg)
	for i, q := range []float64{3, 2} {
		rec := record(cdc.OpUpdate, map[string]any{"inventory_item_id": 111.0, "available": q, "previous_available": []float64{5, 3}[i]})
		rec.Event.Pos.Index = uint32(i)
		if res := write(t, w, rec); res.Err != nil {
			t.Fatalf("write %d: %v", i, res.Err)
		}
	}
	if got := stock(t, srv); got != 2 {
		t.Fatalf("stock %d, want 2", got)
	}
	// The refused first shape, its retry, then the second write straight away.
	if n := len(srv.Requests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
	if v := w.version(); v != "2026-04" {
		t.Errorf("version %q, want the served 2026-04", v)
	}
}

// Regression: a retry of an applied change whose key Shopify no longer
// knows (past the retention window, or before 2026-01 when there is none)
// reported a false mismatch and was dead-lettered. Shopify already holds
// the quantity: the change is done.
func TestLateRetryOfAppliedChange(t *testing.T) {
	t.Parallel()
	for _, version := range []string{"2026-04", "2025-07"} {
		t.Run(version, func(t *testing.T) {
			t.Parallel()
			srv := shop.New(t, token)
			srv.SetLevel("111", "222", 5)
			cfg := testConfig(srv)
			cfg.APIVersion = version
			w := newWriter(t, cfg)
			rec := record(cdc.OpUpdate, map[string]any{"inventory_item_id": 111.0, "available": 3.0, "previous_available": 5.0})
			if res := write(t, w, rec); res.Err != nil {
				t.Fatal(res.Err)
			}
			srv.ExpireKeys()
			if res := write(t, w, rec); res.Err != nil {
				t.Fatalf("late retry: %v, want done", res.Err)
			}
			// A real mismatch is still one: a sale moved the level.
			srv.SetLevel("111", "222", 9)
			stale := record(cdc.OpUpdate, map[string]any{"inventory_item_id": 111.0, "available": 2.0, "previous_available": 3.0})
			stale.Event.Pos.Index = 9
			if res := write(t, w, stale); !errors.Is(res.Err, ErrCompareMismatch) || !cdc.IsPermanent(res.Err) {
				t.Fatalf("stale write: %v, want a permanent ErrCompareMismatch", res.Err)
			}
			if got := stock(t, srv); got != 9 {
				t.Fatalf("stock %d, want 9", got)
			}
		})
	}
}
