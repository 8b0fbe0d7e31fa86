package http

import (
	"context"
	"fmt"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/syncapi"
	"github.com/cdcd-dev/cdcd/vendortest/httpapi"
)

func newWriter(t *testing.T, c *Config) *Writer {
	t.Helper()
	w, err := New("erp", c, zerolog.New(zerolog.NewTestWriter(t)), ratelimit.NewLimiters())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return w
}

// testConfig is a config for srv: create POSTs to /items, update PUTs to
// /items/<sku>, delete DELETEs /items/<external id>.
func testConfig(srv *httpapi.Server) *Config {
	c := NewConfig()
	c.Rate = ratelimit.Rate{Requests: 1000, Per: time.Second}
	c.Timeout = 2 * time.Second
	c.Create = &Request{Method: "POST", URL: srv.URL + "/items"}
	c.Update = &Request{Method: "PUT", URL: srv.URL + "/items/{{.Fields.sku}}"}
	c.Delete = &Request{Method: "DELETE", URL: srv.URL + "/items/{{.ExternalID}}"}
	return c
}

var seq atomic.Int64

// record returns a record whose event has a unique id.
func record(op cdc.Op, extID string, fields map[string]any) syncapi.Record {
	ev := &cdc.Event{Op: op, DeliveryID: fmt.Sprintf("ev-%d", seq.Add(1))}
	return syncapi.Record{Event: ev, Op: op, Object: "items", Key: `{"id":1}`, ExternalID: extID, Fields: fields}
}

// write writes one record and returns its result.
func write(t *testing.T, w *Writer, r syncapi.Record) syncapi.Result {
	t.Helper()
	res, err := w.Write(context.Background(), []syncapi.Record{r})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if len(res) != 1 {
		t.Fatalf("Write returned %d results, want 1", len(res))
	}
	return res[0]
}

func TestOperationsAndIDs(t *testing.T) {
	t.Parallel()
	srv := httpapi.New(t, httpapi.Options{Envelope: "data", NewID: func(n int) string { return "itm_" + string(rune('a'+n-1)) }})
	c := testConfig(srv)
	c.IDPath = "data.id"
	w := newWriter(t, c)

	created := write(t, w, record(cdc.OpCreate, "", map[string]any{"sku": "A/1", "qty": float64(3)}))
	if created.Err != nil || created.ExternalID != "itm_a" {
		t.Fatalf("create: %+v, want id itm_a", created)
	}
	if got, ok := srv.Resource("/items/itm_a"); !ok || got["qty"] != float64(3) {
		t.Fatalf("stored after create: %v %v", got, ok)
	}

	updated := write(t, w, record(cdc.OpUpdate, "itm_a", map[string]any{"sku": "A/1", "qty": float64(5)}))
	if updated.Err != nil || updated.ExternalID != "A/1" {
		t.Fatalf("update: %+v", updated)
	}
	if got, ok := srv.Resource("/items/A%2F1"); !ok || got["qty"] != float64(5) {
		t.Fatalf("stored after update: %v %v; resources %v", got, ok, srv.Resources())
	}
	reqs := srv.Requests()
	if p := reqs[len(reqs)-1].EscapedPath; p != "/items/A%2F1" {
		t.Errorf("update path %q, want the sku as one escaped segment", p)
	}
	if p := reqs[len(reqs)-1].Header; p.Get("Content-Type") != "application/json" {
		t.Errorf("content type %q", p.Get("Content-Type"))
	}

	deleted := write(t, w, record(cdc.OpDelete, "itm_a", nil))
	if deleted.Err != nil || deleted.ExternalID != "itm_a" {
		t.Fatalf("delete: %+v", deleted)
	}
	if _, ok := srv.Resource("/items/itm_a"); ok {
		t.Fatal("resource still stored after delete")
	}
	// Deleting what is gone (a resend after a timeout) succeeds.
	if again := write(t, w, record(cdc.OpDelete, "itm_a", nil)); again.Err != nil {
		t.Fatalf("second delete: %v", again.Err)
	}
}

func TestTemplates(t *testing.T) {
	t.Parallel()
	srv := httpapi.New(t, httpapi.Options{})
	cases := []struct {
		name, url, body string
		rec             syncapi.Record
		wantPath        string
		wantQuery       string
		wantBody        string
		wantPermanent   bool
	}{
		{name: "path escaped", url: "/stock/{{.Fields.sku}}",
			rec: record(cdc.OpUpdate, "x", map[string]any{"sku": "a b/c?d"}), wantPath: "/stock/a%20b%2Fc%3Fd"},
		{name: "nested field and number", url: "/loc/{{.Fields.loc.id}}/{{.Fields.n}}",
			rec:      record(cdc.OpUpdate, "x", map[string]any{"loc": map[string]any{"id": "W1"}, "n": float64(1234567890)}),
			wantPath: "/loc/W1/1234567890"},
		{name: "query escaped", url: "/q?sku={{.Fields.sku | query}}",
			rec: record(cdc.OpUpdate, "x", map[string]any{"sku": "a&b=c"}), wantPath: "/q", wantQuery: "sku=a%26b%3Dc"},
		{name: "key and external id", url: "/r/{{.ExternalID}}?k={{.Key | query}}",
			rec: record(cdc.OpUpdate, "E 1", nil), wantPath: "/r/E%201", wantQuery: `k=%7B%22id%22%3A1%7D`},
		{name: "body template", url: "/b/{{.ExternalID}}", body: `{"available":{{json .Fields.qty}},"ref":{{json .EventID}}}`,
			rec: record(cdc.OpUpdate, "9", map[string]any{"qty": float64(7)}), wantPath: "/b/9", wantBody: `{"available":7,"ref":"`},
		{name: "missing field", url: "/x/{{.Fields.nope}}",
			rec: record(cdc.OpUpdate, "x", map[string]any{"sku": "a"}), wantPermanent: true},
		{name: "null field", url: "/x/{{.Fields.sku}}",
			rec: record(cdc.OpUpdate, "x", map[string]any{"sku": nil}), wantPermanent: true},
		{name: "empty external id", url: "/x/{{.ExternalID}}",
			rec: record(cdc.OpUpdate, "", nil), wantPermanent: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(srv)
			c.Create = nil
			c.Update = &Request{Method: "PUT", URL: srv.URL + tc.url, Body: tc.body}
			w := newWriter(t, c)
			before := len(srv.Requests())
			res := write(t, w, tc.rec)
			if tc.wantPermanent {
				if !cdc.IsPermanent(res.Err) {
					t.Fatalf("err %v, want permanent", res.Err)
				}
				if n := len(srv.Requests()); n != before {
					t.Fatalf("a request was sent for an unrenderable record")
				}
				return
			}
			if res.Err != nil {
				t.Fatalf("write: %v", res.Err)
			}
			var got *httpapi.Request
			for _, r := range srv.Requests() {
				if r.IdempotencyKey == tc.rec.Event.ID() {
					got = &r
				}
			}
			if got == nil {
				t.Fatal("request not received")
			}
			if got.EscapedPath != tc.wantPath || got.RawQuery != tc.wantQuery {
				t.Errorf("path %q query %q, want %q %q", got.Path, got.RawQuery, tc.wantPath, tc.wantQuery)
			}
			if tc.wantBody != "" && !strings.HasPrefix(string(got.Body), tc.wantBody) {
				t.Errorf("body %s, want prefix %s", got.Body, tc.wantBody)
			}
		})
	}
}

func TestAuthModes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		server httpapi.Auth
		writer Auth
	}{
		{"bearer", httpapi.Auth{Bearer: "tok"}, Auth{Type: "bearer", Token: "tok"}},
		{"basic", httpapi.Auth{Username: "u", Password: "p:w"}, Auth{Type: "basic", Username: "u", Password: "p:w"}},
		{"hmac hex", httpapi.Auth{HMACSecret: "s3"}, Auth{Type: "hmac", Secret: "s3"}},
		{"hmac base64 timestamp prefix", httpapi.Auth{HMACSecret: "s3", HMACHeader: "X-Sig", HMACPrefix: "sha256=", HMACEncoding: "base64", TimestampHeader: "X-Ts"},
			Auth{Type: "hmac", Secret: "s3", Header: "X-Sig", Prefix: "sha256=", Encoding: "base64", TimestampHeader: "X-Ts"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httpapi.New(t, httpapi.Options{Auth: tc.server})
			c := testConfig(srv)
			c.Auth = tc.writer
			w := newWriter(t, c)
			if res := write(t, w, record(cdc.OpUpdate, "1", map[string]any{"sku": "S1", "qty": 1.0})); res.Err != nil {
				t.Fatalf("authenticated write: %v", res.Err)
			}
			if _, ok := srv.Resource("/items/S1"); !ok {
				t.Fatal("resource not stored")
			}

			c.Auth.Token, c.Auth.Password, c.Auth.Secret = "bad", "bad", "bad"
			bad := newWriter(t, c)
			res := write(t, bad, record(cdc.OpUpdate, "1", map[string]any{"sku": "S2"}))
			if !cdc.IsPermanent(res.Err) || !strings.Contains(res.Err.Error(), "401") {
				t.Fatalf("wrong credentials: %v, want permanent 401", res.Err)
			}
			if _, ok := srv.Resource("/items/S2"); ok {
				t.Fatal("unauthenticated request had an effect")
			}
		})
	}
}

func TestRegister(t *testing.T) {
	t.Parallel()
	r := config.NewRegistry()
	Register(r)
	defer func() {
		if recover() == nil {
			t.Error("a second registration did not panic")
		}
	}()
	Register(r)
}

// A URL without actions is parsed once and sent as written, with the
// headers of every request; credentials in it go as basic auth, as
// net/http's client sends them, unless auth sets Authorization.
func TestFixedURLRequest(t *testing.T) {
	t.Parallel()
	var got []*nethttp.Request
	var bodies []string
	var mu sync.Mutex
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, string(b))
		mu.Unlock()
		w.WriteHeader(nethttp.StatusCreated)
		fmt.Fprint(w, `{"id": "n-1"}`)
	}))
	defer srv.Close()
	c := NewConfig()
	c.Rate = ratelimit.Rate{Requests: 1000, Per: time.Second}
	c.Headers = map[string]string{"x-tenant": "t1", "Accept": "text/plain"}
	c.Create = &Request{Method: "POST", URL: strings.Replace(srv.URL, "http://", "http://u:p%20w@", 1) + "/items{{/* a comment */}}?a=1"}
	w := newWriter(t, c)
	if w.ops["create"].fixed == nil {
		t.Fatal("create url not parsed once")
	}
	for range 2 {
		if res := write(t, w, record(cdc.OpCreate, "", map[string]any{"sku": "P1"})); res.Err != nil || res.ExternalID != "n-1" {
			t.Fatalf("create: %+v", res)
		}
	}
	c.Auth = Auth{Type: "bearer", Token: "tok"}
	if res := write(t, newWriter(t, c), record(cdc.OpCreate, "", map[string]any{"sku": "P2"})); res.Err != nil {
		t.Fatalf("create: %+v", res)
	}
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	for i, r := range got {
		if r.URL.String() != "/items?a=1" || r.Method != "POST" {
			t.Errorf("request %d: %s %s", i, r.Method, r.URL)
		}
		if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Accept") != "application/json" ||
			r.Header.Get("X-Tenant") != "t1" || r.Header.Get("Idempotency-Key") == "" {
			t.Errorf("request %d headers: %v", i, r.Header)
		}
		if i < 2 {
			if u, p, ok := r.BasicAuth(); !ok || u != "u" || p != "p w" {
				t.Errorf("request %d: basic auth %q %q %v, want the URL's", i, u, p, ok)
			}
		} else if a := r.Header.Get("Authorization"); a != "Bearer tok" {
			t.Errorf("request %d: Authorization %q, want the bearer token", i, a)
		}
		if r.ContentLength != int64(len(bodies[i])) || !strings.Contains(bodies[i], `"sku":"P`) {
			t.Errorf("request %d: body %q, length %d", i, bodies[i], r.ContentLength)
		}
	}
}
