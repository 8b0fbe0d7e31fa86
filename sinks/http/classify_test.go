package http

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncapi"
	"github.com/cdcd-dev/cdcd/vendortest/httpapi"
)

func TestClassification(t *testing.T) {
	t.Parallel()
	srv := httpapi.New(t, httpapi.Options{})
	ra := func(v string) http.Header { return http.Header{"Retry-After": {v}} }
	cases := []struct {
		status     int
		header     http.Header
		body       string
		permanent  bool
		retryAfter time.Duration // 0: none
		message    string
	}{
		{status: 400, body: `{"message":"sku is required"}`, permanent: true, message: "sku is required"},
		{status: 401, body: `{"error":"invalid_token"}`, permanent: true, message: "invalid_token"},
		{status: 403, body: `forbidden`, permanent: true, message: "forbidden"},
		{status: 404, body: `{"errors":[{"message":"no such item"}]}`, permanent: true, message: "no such item"},
		{status: 422, body: `{"error":{"message":"qty must be >= 0"}}`, permanent: true, message: "qty must be >= 0"},
		{status: 408},
		{status: 409, body: `{"message":"request in progress"}`, message: "request in progress"},
		{status: 425},
		{status: 429, header: ra("7"), retryAfter: 7 * time.Second},
		{status: 429},
		{status: 500, body: `{"detail":"boom"}`, message: "boom"},
		{status: 502},
		{status: 503, header: ra("120"), retryAfter: 2 * time.Minute},
		{status: 504},
		{status: 302, permanent: true},
	}
	for _, tc := range cases {
		w := newWriter(t, testConfig(srv)) // a Retry-After pauses a writer's limiter
		srv.Respond(1, tc.status, tc.header, tc.body)
		res := write(t, w, record(cdc.OpUpdate, "1", map[string]any{"sku": "C1"}))
		if res.Err == nil {
			t.Errorf("%d: no error", tc.status)
			continue
		}
		if got := cdc.IsPermanent(res.Err); got != tc.permanent {
			t.Errorf("%d: permanent %v, want %v (%v)", tc.status, got, tc.permanent, res.Err)
		}
		d, ok := cdc.RetryAfterOf(res.Err)
		if tc.retryAfter != 0 && (!ok || d != tc.retryAfter) {
			t.Errorf("%d: retry after %v %v, want %v", tc.status, d, ok, tc.retryAfter)
		}
		if tc.retryAfter == 0 && ok {
			t.Errorf("%d: unexpected retry after %v", tc.status, d)
		}
		if !strings.Contains(res.Err.Error(), tc.message) || !strings.Contains(res.Err.Error(), srv.Listener.Addr().String()) {
			t.Errorf("%d: error %q lacks the message %q or the host", tc.status, res.Err, tc.message)
		}
	}
	if _, ok := srv.Resource("/items/C1"); ok {
		t.Error("a failed request had an effect")
	}
}

// A 429's Retry-After pauses the account's limiter, so that no request of
// any writer sharing the account goes out before it.
func TestRetryAfterPausesLimiter(t *testing.T) {
	t.Parallel()
	srv := httpapi.New(t, httpapi.Options{})
	w := newWriter(t, testConfig(srv))
	srv.Respond(1, http.StatusTooManyRequests, http.Header{"Retry-After": {"30"}}, `{"message":"slow down"}`)
	res := write(t, w, record(cdc.OpUpdate, "1", map[string]any{"sku": "P1"}))
	if d, ok := cdc.RetryAfterOf(res.Err); !ok || d != 30*time.Second {
		t.Fatalf("err %v, want retry after 30s", res.Err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := w.Write(ctx, []syncapi.Record{record(cdc.OpUpdate, "1", map[string]any{"sku": "P2"})}); err == nil {
		t.Fatal("write went out during the pause")
	}
	if n := len(srv.Requests()); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

func TestTimeoutIsTransient(t *testing.T) {
	t.Parallel()
	srv := httpapi.New(t, httpapi.Options{Faults: httpapi.Faults{Timeout: 1}})
	c := testConfig(srv)
	c.Timeout = 100 * time.Millisecond
	w := newWriter(t, c)
	res := write(t, w, record(cdc.OpUpdate, "1", map[string]any{"sku": "T1"}))
	if res.Err == nil || cdc.IsPermanent(res.Err) {
		t.Fatalf("timeout: %v, want a transient error", res.Err)
	}
}

// The idempotency key is the event id, so resending a record whose first
// request timed out after being applied has no second effect.
func TestIdempotentReplay(t *testing.T) {
	t.Parallel()
	srv := httpapi.New(t, httpapi.Options{Faults: httpapi.Faults{Timeout: 1}})
	c := testConfig(srv)
	c.Timeout = 100 * time.Millisecond
	w := newWriter(t, c)
	rec := record(cdc.OpCreate, "", map[string]any{"sku": "I1"})

	first := write(t, w, rec)
	if first.Err == nil {
		t.Fatal("first attempt: want a timeout")
	}
	srv.SetFaults(httpapi.Faults{})
	second := write(t, w, rec)
	if second.Err != nil || second.ExternalID != "1" {
		t.Fatalf("resend: %+v, want the id of the first create", second)
	}
	if n := srv.Effects(); n != 1 {
		t.Fatalf("%d effects, want 1", n)
	}
	if n := len(srv.Resources()); n != 1 {
		t.Fatalf("%d resources, want 1: %v", n, srv.Resources())
	}
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	for i, r := range reqs {
		if r.IdempotencyKey != rec.Event.ID() {
			t.Errorf("request %d: key %q, want the event id %q", i, r.IdempotencyKey, rec.Event.ID())
		}
	}
	if !reqs[1].Replayed {
		t.Error("second request was not answered from the idempotency store")
	}
}

func TestIdempotencyHeaderName(t *testing.T) {
	t.Parallel()
	srv := httpapi.New(t, httpapi.Options{IdempotencyHeader: "X-Request-Id"})
	c := testConfig(srv)
	c.IdempotencyHeader = "X-Request-Id"
	w := newWriter(t, c)
	rec := record(cdc.OpUpdate, "1", map[string]any{"sku": "H1"})
	write(t, w, rec)
	if got := srv.Requests()[0]; got.IdempotencyKey != rec.Event.ID() || got.Header.Get("Idempotency-Key") != "" {
		t.Fatalf("key %q, default header %q", got.IdempotencyKey, got.Header.Get("Idempotency-Key"))
	}
}

func TestMissingDelete(t *testing.T) {
	t.Parallel()
	srv := httpapi.New(t, httpapi.Options{})
	c := testConfig(srv)
	c.Delete = nil
	w := newWriter(t, c)
	if res := write(t, w, record(cdc.OpDelete, "1", nil)); !cdc.IsPermanent(res.Err) {
		t.Fatalf("delete without a delete request: %v, want permanent", res.Err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	c.Update = &Request{Method: "GET", URL: "ftp://x/{{.Fields.a"}
	c.Auth = Auth{Type: "hmac", Encoding: "b32"}
	c.SuccessCodes = []int{200, 42}
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"update.method", "update.url", "auth.secret", "auth.encoding", "success_codes[1]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s:\n%v", want, err)
		}
	}
}
