package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
)

// fakeAcceptor records the changes of every Accept that returned nil.
type fakeAcceptor struct {
	mu       sync.Mutex
	accepted []Change
	calls    int
	// accept, when set, decides the outcome of a call.
	accept func(ctx context.Context) error
}

func (a *fakeAcceptor) Accept(ctx context.Context, system string, changes []Change) error {
	a.mu.Lock()
	a.calls++
	a.mu.Unlock()
	if a.accept != nil {
		if err := a.accept(ctx); err != nil {
			return err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.accepted = append(a.accepted, changes...)
	return nil
}

func (a *fakeAcceptor) changes() []Change {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Change(nil), a.accepted...)
}

// intake mounts a handler for one HubSpot system the way server.Handle does.
type intake struct {
	mux *http.ServeMux
	acc *fakeAcceptor
	reg *prometheus.Registry
}

func newIntake(t testing.TB, cfg HandlerConfig, acc *fakeAcceptor, d Deduper) *intake {
	t.Helper()
	return newIntakeLog(t, cfg, acc, d, zerolog.New(zerolog.NewTestWriter(t)))
}

func newIntakeLog(t testing.TB, cfg HandlerConfig, acc *fakeAcceptor, d Deduper, log zerolog.Logger) *intake {
	t.Helper()
	reg := prometheus.NewRegistry()
	hub := must(NewHubSpotVerifier(HubSpotConfig{Secrets: testSecrets}))
	h, err := NewHandler(cfg, []System{{
		Name:     "hubspot",
		Verifier: hub,
		Parser:   must(NewHubSpotParser(HubSpotParserConfig{})),
	}}, acc, d, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/{system}", h)
	return &intake{mux: mux, acc: acc, reg: reg}
}

func (in *intake) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	in.mux.ServeHTTP(w, r)
	return w
}

// counter reads a counter or histogram sample count with the given labels.
func (in *intake) counter(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := in.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				if m.GetHistogram() != nil {
					return float64(m.GetHistogram().GetSampleCount())
				}
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// hubSpotDelivery is an HTTP request signed like HubSpot v3 signs
// hubSpotURL, arriving through a TLS-terminating proxy.
func hubSpotDelivery(body string, at time.Time) *http.Request {
	signed := hubSpotV3Request(testSecrets[0], "POST", hubSpotURL, body, at)
	r := httptest.NewRequest("POST", "/webhooks/hubspot?portal=62515", strings.NewReader(body))
	r.Host = "cdcd.example.com"
	r.Header = signed.Header.Clone()
	r.Header.Set("X-Forwarded-Proto", "https")
	r.Header.Set("Content-Type", "application/json")
	return r
}

func hubSpotEvents(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("testdata/hubspot_events.json")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHandlerRejects(t *testing.T) {
	t.Parallel()
	body := hubSpotEvents(t)
	failing := func(context.Context) error { return errors.New("kafka: not enough replicas") }
	tests := []struct {
		name     string
		cfg      HandlerConfig
		accept   func(context.Context) error
		req      func() *http.Request
		status   int
		contains string
	}{
		{name: "unknown system", status: 404, contains: "unknown system", req: func() *http.Request {
			return httptest.NewRequest("POST", "/webhooks/salesforce", strings.NewReader(body))
		}},
		{name: "missing signature", status: 401, contains: "missing signature", req: func() *http.Request {
			r := hubSpotDelivery(body, time.Now())
			r.Header.Del(HeaderHubSpotSignatureV3)
			return r
		}},
		{name: "bad signature", status: 401, contains: "bad signature", req: func() *http.Request {
			r := hubSpotDelivery(body, time.Now())
			r.Body = io.NopCloser(strings.NewReader(strings.Replace(body, "Ada", "Eve", 1)))
			return r
		}},
		{name: "signed for another URL", status: 401, contains: "bad signature", req: func() *http.Request {
			r := hubSpotDelivery(body, time.Now())
			r.Header.Set("X-Forwarded-Proto", "http")
			return r
		}},
		{name: "expired timestamp", status: 401, contains: "outside the replay window", req: func() *http.Request {
			return hubSpotDelivery(body, time.Now().Add(-10*time.Minute))
		}},
		{name: "malformed JSON", status: 400, contains: "hubspot delivery", req: func() *http.Request {
			return hubSpotDelivery(`[{"eventId":1,"objectId":`, time.Now())
		}},
		{name: "oversized body", status: 413, cfg: HandlerConfig{MaxBody: 256}, req: func() *http.Request {
			return hubSpotDelivery(body, time.Now())
		}},
		{name: "acceptor failure", status: 503, accept: failing, req: func() *http.Request {
			return hubSpotDelivery(body, time.Now())
		}},
		{name: "acceptor timeout", status: 503, cfg: HandlerConfig{Timeout: 50 * time.Millisecond},
			accept: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
			req:    func() *http.Request { return hubSpotDelivery(body, time.Now()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := newIntake(t, tt.cfg, &fakeAcceptor{accept: tt.accept}, NewMemoryDeduper(0, 0))
			w := in.do(tt.req())
			if w.Code != tt.status {
				t.Fatalf("status %d (%q), want %d", w.Code, w.Body.String(), tt.status)
			}
			if !strings.Contains(w.Body.String(), tt.contains) {
				t.Errorf("body %q does not contain %q", w.Body.String(), tt.contains)
			}
			for _, s := range testSecrets {
				if strings.Contains(w.Body.String(), s) {
					t.Errorf("body %q reveals a secret", w.Body.String())
				}
			}
			if got := in.acc.changes(); len(got) != 0 {
				t.Errorf("accepted %d changes, want none", len(got))
			}
			if tt.status == 503 && w.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			label := "hubspot"
			if tt.status == 404 {
				label = unknownSystem
			}
			if n := in.counter(t, "cdcd_webhook_requests_total", "system", label, "status", strconv.Itoa(tt.status)); n != 1 {
				t.Errorf("cdcd_webhook_requests_total{system=%q,status=%d} = %v, want 1", label, tt.status, n)
			}
		})
	}
}

func TestHandlerOverload(t *testing.T) {
	t.Parallel()
	body := hubSpotEvents(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	acc := &fakeAcceptor{accept: func(context.Context) error {
		close(entered)
		<-release
		return errors.New("broker unavailable")
	}}
	in := newIntake(t, HandlerConfig{MaxInFlight: 1}, acc, nil)
	first := make(chan int)
	go func() { first <- in.do(hubSpotDelivery(body, time.Now())).Code }()
	<-entered

	w := in.do(hubSpotDelivery(body, time.Now()))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
		t.Errorf("while full: status %d, Retry-After %q; want 503, 1", w.Code, w.Header().Get("Retry-After"))
	}
	close(release)
	if code := <-first; code != http.StatusServiceUnavailable {
		t.Errorf("first delivery: status %d, want 503", code)
	}
	if got := acc.changes(); len(got) != 0 {
		t.Errorf("accepted %d changes, want none", len(got))
	}
	acc.mu.Lock()
	calls := acc.calls
	acc.mu.Unlock()
	if calls != 1 {
		t.Errorf("Accept called %d times, want 1 (the overloaded delivery must not reach it)", calls)
	}
}

func TestHandlerAccepts(t *testing.T) {
	t.Parallel()
	body := hubSpotEvents(t)
	in := newIntake(t, HandlerConfig{}, &fakeAcceptor{}, NewMemoryDeduper(0, 0))
	w := in.do(hubSpotDelivery(body, time.Now()))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d (%q), want 200", w.Code, w.Body.String())
	}
	want := must(must(NewHubSpotParser(HubSpotParserConfig{})).Parse(&Request{Body: []byte(body)}))
	if got := in.acc.changes(); !reflect.DeepEqual(got, want) {
		t.Errorf("accepted %d changes:\n%+v\nwant %d:\n%+v", len(got), got, len(want), want)
	}
	if n := in.counter(t, "cdcd_webhook_seconds", "system", "hubspot"); n != 1 {
		t.Errorf("cdcd_webhook_seconds count = %v, want 1", n)
	}
}

func TestHandlerDedupeMemory(t *testing.T) {
	t.Parallel()
	testDuplicateDelivery(t, NewMemoryDeduper(0, 0))
}

// testDuplicateDelivery sends one delivery twice, then a retry that adds
// one new event: every change is accepted exactly once.
func testDuplicateDelivery(t *testing.T, d Deduper) {
	t.Helper()
	body := hubSpotEvents(t)
	in := newIntake(t, HandlerConfig{}, &fakeAcceptor{}, d)
	for i := range 2 {
		if w := in.do(hubSpotDelivery(body, time.Now())); w.Code != http.StatusOK {
			t.Fatalf("delivery %d: status %d (%q), want 200", i, w.Code, w.Body.String())
		}
	}
	want := must(must(NewHubSpotParser(HubSpotParserConfig{})).Parse(&Request{Body: []byte(body)}))
	if got := in.acc.changes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("accepted %d changes, want the delivery's %d once", len(got), len(want))
	}
	in.acc.mu.Lock()
	calls := in.acc.calls
	in.acc.mu.Unlock()
	if calls != 1 {
		t.Errorf("Accept called %d times, want 1", calls)
	}
	if n := in.counter(t, "cdcd_webhook_duplicates_total", "system", "hubspot"); n != float64(len(want)) {
		t.Errorf("cdcd_webhook_duplicates_total = %v, want %d", n, len(want))
	}

	extra := `{"eventId":3816279399,"subscriptionId":25,"portalId":33,"occurredAt":1763819950000,"subscriptionType":"contact.deletion","objectId":777,"changeSource":"CRM_UI"}`
	more := strings.Replace(strings.TrimSpace(body), "[", "["+extra+",", 1)
	if w := in.do(hubSpotDelivery(more, time.Now())); w.Code != http.StatusOK {
		t.Fatalf("overlapping delivery: status %d (%q), want 200", w.Code, w.Body.String())
	}
	got := in.acc.changes()
	if len(got) != len(want)+1 || got[len(got)-1].DeliveryID != "33/25/3816279399/1763819950000/777" {
		t.Errorf("after overlapping delivery: accepted %d changes, want only the new one added", len(got))
	}
}

func TestFullURL(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("POST", "/webhooks/hubspot?a=1%2F2", nil)
	r.Host = "cdcd.example.com:8443"
	if got, want := fullURL(r), "http://cdcd.example.com:8443/webhooks/hubspot?a=1%2F2"; got != want {
		t.Errorf("plain: %q, want %q", got, want)
	}
	r.Header.Set("X-Forwarded-Proto", "HTTPS, http")
	if got, want := fullURL(r), "https://cdcd.example.com:8443/webhooks/hubspot?a=1%2F2"; got != want {
		t.Errorf("forwarded: %q, want %q", got, want)
	}
}

func TestNewHandlerValidates(t *testing.T) {
	t.Parallel()
	v := must(NewHubSpotVerifier(HubSpotConfig{Secrets: testSecrets}))
	p := must(NewHubSpotParser(HubSpotParserConfig{}))
	_, err := NewHandler(HandlerConfig{MaxBody: -1}, []System{
		{Name: "hubspot", Verifier: v, Parser: p},
		{Name: "hubspot", Verifier: v, Parser: p},
		{Name: "shop"},
	}, nil, nil, zerolog.Nop(), nil)
	for _, want := range []string{"max_body", "acceptor: required", `systems[1].name: "hubspot" is mounted twice`, "systems[2].verifier", "systems[2].parser"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
}

// HubSpot batches events of every subscription into one delivery: one of a
// kind cdcd does not sync (an association change, a ticket) must not make
// the whole delivery refused, which would lose the others once HubSpot
// stops retrying.
func TestHandlerIgnoresUnsyncedKinds(t *testing.T) {
	t.Parallel()
	body := `[` +
		`{"eventId":1,"subscriptionId":7,"portalId":62515,"occurredAt":1700000000000,"subscriptionType":"contact.associationChange","objectId":1,"associationType":"CONTACT_TO_COMPANY","fromObjectId":1,"toObjectId":2},` +
		`{"eventId":2,"subscriptionId":8,"portalId":62515,"occurredAt":1700000000000,"subscriptionType":"ticket.creation","objectId":5},` +
		`{"eventId":3,"subscriptionId":9,"portalId":62515,"occurredAt":1700000000000,"subscriptionType":"object.creation","objectTypeId":"0-5","objectId":6},` +
		`{"eventId":4,"subscriptionId":10,"portalId":62515,"occurredAt":1700000000000,"subscriptionType":"contact.propertyChange","objectId":1,"propertyName":"firstname","propertyValue":"Ada"}` +
		`]`
	in := newIntake(t, HandlerConfig{}, &fakeAcceptor{}, NewMemoryDeduper(0, 0))
	w := in.do(hubSpotDelivery(body, time.Now()))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d (%q), want 200", w.Code, w.Body.String())
	}
	got := in.acc.changes()
	if len(got) != 1 || got[0].Kind != "contact.propertyChange" || got[0].Ignore {
		t.Fatalf("accepted %+v, want the property change alone", got)
	}
	if n := in.counter(t, "cdcd_webhook_events_ignored_total", "system", "hubspot"); n != 3 {
		t.Errorf("cdcd_webhook_events_ignored_total = %v, want 3", n)
	}

	// A delivery of ignored events only is acknowledged and stores nothing.
	only := `[{"eventId":5,"subscriptionId":7,"portalId":62515,"occurredAt":1700000000000,"subscriptionType":"deal.associationChange","objectId":1}]`
	if w := in.do(hubSpotDelivery(only, time.Now())); w.Code != http.StatusOK {
		t.Fatalf("status %d (%q), want 200", w.Code, w.Body.String())
	}
	if n := len(in.acc.changes()); n != 1 {
		t.Errorf("%d changes accepted, want still 1", n)
	}
}
