package hubspot

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/sources/webhook"
)

// receiver is a webhook endpoint that checks each delivery with cdcd's
// HubSpot verifier and parser and keeps the parsed changes.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	fail     int // answer the next fail requests 500
	requests [][]WebhookEvent
	changes  []webhook.Change
}

const secret = "client-secret"

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t}
	verifier, err := webhook.NewHubSpotVerifier(webhook.HubSpotConfig{Secrets: []string{secret}})
	if err != nil {
		t.Fatal(err)
	}
	parser, err := webhook.NewHubSpotParser(webhook.HubSpotParserConfig{})
	if err != nil {
		t.Fatal(err)
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		in := &webhook.Request{Method: req.Method, URL: r.srv.URL + req.URL.RequestURI(), Header: req.Header, Body: body}
		if err := verifier.Verify(in, time.Now()); err != nil {
			t.Errorf("verify: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		changes, err := parser.Parse(in)
		if err != nil {
			t.Errorf("parse %s: %v", body, err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var events []WebhookEvent
		if err := json.Unmarshal(body, &events); err != nil {
			t.Errorf("decode %s: %v", body, err)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.requests = append(r.requests, events)
		if r.fail > 0 {
			r.fail--
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		r.changes = append(r.changes, changes...)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) failNext(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = n
}

// wait polls until check, given the accepted changes and every request's
// events, returns nil.
func (r *receiver) wait(check func(changes []webhook.Change, requests [][]WebhookEvent) error) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		err := check(r.changes, r.requests)
		r.mu.Unlock()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newWebhookServer(t *testing.T, r *receiver, hooks Webhooks) (*Server, *client) {
	hooks.URL, hooks.Secret = r.srv.URL+"/webhooks/hubspot", secret
	return newServer(t, Options{Webhooks: hooks, Seed: 7})
}

// describe renders a change as "op table key [field=value] source".
func describe(c webhook.Change) string {
	var id string
	_ = json.Unmarshal(c.Key[0].Value, &id)
	s := fmt.Sprintf("%s %s %s", map[cdc.Op]string{cdc.OpCreate: "create", cdc.OpUpdate: "update", cdc.OpDelete: "delete"}[c.Op], c.Table, id)
	for _, f := range c.After {
		s += fmt.Sprintf(" %s=%s", f.Name, f.Value)
	}
	return s + " " + c.OriginHint
}

func TestWebhooksAnnounceEveryWrite(t *testing.T) {
	t.Parallel()
	r := newReceiver(t)
	s, c := newWebhookServer(t, r, Webhooks{AppID: 99})
	_, obj, _ := c.do("POST", "contacts", props("email", "a@example.com", "firstname", "Ada"))
	id := obj["id"].(string)
	c.do("PATCH", "contacts/"+id, props("firstname", "Grace", "email", "a@example.com")) // email unchanged: no event
	ui := s.Insert("companies", map[string]string{"name": "Acme"})
	s.Update("companies", ui, map[string]string{"name": "Acme Inc", "domain": ""}) // domain stays unset: no event
	c.do("DELETE", "contacts/"+id, nil)

	want := []string{
		"create contacts " + id + " INTEGRATION/99",
		"update contacts " + id + ` firstname="Grace" INTEGRATION/99`,
		"create companies " + ui + " CRM_UI/userId:516",
		"update companies " + ui + ` name="Acme Inc" CRM_UI/userId:516`,
		"delete contacts " + id + " INTEGRATION/99",
	}
	r.wait(func(changes []webhook.Change, _ [][]WebhookEvent) error {
		got := map[string]bool{}
		for _, c := range changes {
			got[describe(c)] = true
		}
		for _, w := range want {
			if !got[w] {
				return fmt.Errorf("no %q among %d changes %v", w, len(changes), got)
			}
		}
		if len(changes) != len(want) {
			return fmt.Errorf("%d changes, want %d: %v", len(changes), len(want), got)
		}
		// The double counts an event delivered once it has read the 200,
		// which may be after the receiver recorded it.
		if n := s.WebhooksPending(); n != 0 {
			return fmt.Errorf("%d events pending after all were accepted", n)
		}
		return nil
	})
}

func TestWebhooksBatchAWriteCall(t *testing.T) {
	t.Parallel()
	r := newReceiver(t)
	s, c := newWebhookServer(t, r, Webhooks{CreationChanges: true, Properties: []string{"firstname"}})
	var inputs []any
	for i := range 60 {
		inputs = append(inputs, props("email", fmt.Sprintf("c%d@example.com", i), "firstname", "N", "lastname", "L"))
	}
	if status, body, _ := c.do("POST", "contacts/batch/create", map[string]any{"inputs": inputs}); status != 201 {
		t.Fatalf("batch create: %d %v", status, body)
	}
	r.wait(func(changes []webhook.Change, requests [][]WebhookEvent) error {
		if len(changes) != 120 { // a creation and a firstname change each; lastname is not subscribed
			return fmt.Errorf("%d changes, want 120", len(changes))
		}
		if len(requests) != 2 || len(requests[0])+len(requests[1]) != 120 || max(len(requests[0]), len(requests[1])) != 100 {
			return fmt.Errorf("%d requests, want one of 100 events and one of 20", len(requests))
		}
		if d := s.WebhookDeliveries(); len(d) != 2 || d[0].Status != 200 {
			return fmt.Errorf("deliveries %+v", d)
		}
		return nil
	})
}

func TestWebhooksRetryFailedRequests(t *testing.T) {
	t.Parallel()
	r := newReceiver(t)
	r.failNext(2)
	s, _ := newWebhookServer(t, r, Webhooks{RetryBackoff: 20 * time.Millisecond})
	id := s.Insert("contacts", map[string]string{"email": "a@example.com"})
	r.wait(func(changes []webhook.Change, requests [][]WebhookEvent) error {
		if len(changes) != 1 || changes[0].Op != cdc.OpCreate {
			return fmt.Errorf("accepted %d changes, want the creation", len(changes))
		}
		for i, events := range requests {
			if len(events) != 1 || events[0].AttemptNumber != i || fmt.Sprint(events[0].ObjectID) != id {
				return fmt.Errorf("request %d: %+v", i, events)
			}
		}
		// The double records a delivery once it has read the answer, which
		// may be after the receiver recorded the request.
		d := s.WebhookDeliveries()
		if len(d) != 3 || d[0].Status != 500 || d[1].Status != 500 || d[2].Status != 200 || d[2].At.Sub(d[1].At) < 40*time.Millisecond {
			return fmt.Errorf("deliveries %+v, want two 500s, then 200 after a doubled backoff", d)
		}
		return nil
	})
}

func TestWebhooksLateDuplicatedReordered(t *testing.T) {
	t.Parallel()
	r := newReceiver(t)
	s, _ := newWebhookServer(t, r, Webhooks{MinDelay: 100 * time.Millisecond, MaxDelay: 300 * time.Millisecond, Duplicate: 1, Reorder: true})
	start := time.Now()

	for i := range 20 {
		s.Insert("contacts", map[string]string{"email": fmt.Sprintf("c%d@example.com", i)})
	}
	r.wait(func(_ []webhook.Change, requests [][]WebhookEvent) error {
		copies := map[int64]int{}
		for _, events := range requests {
			for _, e := range events {
				copies[e.EventID]++
			}
		}
		if len(copies) != 20 {
			return fmt.Errorf("%d distinct events, want 20", len(copies))
		}
		for id, n := range copies {
			if n != 2 {
				return fmt.Errorf("event %d sent %d times, want 2", id, n)
			}
		}
		return nil
	})
	var order []int64
	for _, d := range s.WebhookDeliveries() {
		if d.At.Sub(start) < 100*time.Millisecond {
			t.Fatalf("delivery after %s, before MinDelay", d.At.Sub(start))
		}
		for _, e := range d.Events {
			order = append(order, e.ObjectID)
		}
	}
	sorted := true
	for i := 1; i < len(order); i++ {
		sorted = sorted && order[i-1] <= order[i]
	}
	if sorted {
		t.Fatalf("events came in write order: %v", order)
	}

}

func TestWebhooksHoldAndRelease(t *testing.T) {
	t.Parallel()
	r := newReceiver(t)
	s, _ := newWebhookServer(t, r, Webhooks{})
	s.HoldWebhooks(func(e WebhookEvent) bool { return e.PropertyName == "firstname" })
	id := s.Insert("contacts", map[string]string{"email": "a@example.com"})
	s.Update("contacts", id, map[string]string{"firstname": "Ada", "lastname": "Lovelace"})
	r.wait(func(changes []webhook.Change, _ [][]WebhookEvent) error {
		if len(changes) != 2 {
			return fmt.Errorf("%d changes, want the creation and lastname", len(changes))
		}
		return nil
	})
	if h := s.HeldWebhooks(); len(h) != 1 || *h[0].PropertyValue != "Ada" {
		t.Fatalf("held %+v", h)
	}
	s.ReleaseWebhooks()
	r.wait(func(changes []webhook.Change, _ [][]WebhookEvent) error {
		if len(changes) != 3 || changes[2].After[0].Name != "firstname" {
			return fmt.Errorf("%d changes, want the held firstname last", len(changes))
		}
		return nil
	})
}

func TestWebhooksPlan(t *testing.T) {
	t.Parallel()
	r := newReceiver(t)
	s, _ := newWebhookServer(t, r, Webhooks{Plan: func(e WebhookEvent, rng *rand.Rand) []time.Duration {
		if e.SubscriptionType == "contact.creation" {
			return nil // dropped
		}
		return []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond}
	}})
	id := s.Insert("contacts", map[string]string{"email": "a@example.com"})
	s.Update("contacts", id, map[string]string{"firstname": "Ada"})
	// Copies due close together may share a request on a loaded machine:
	// count the events, not the requests.
	r.wait(func(changes []webhook.Change, requests [][]WebhookEvent) error {
		events := 0
		for _, req := range requests {
			events += len(req)
		}
		if events != 3 || len(changes) != 3 {
			return fmt.Errorf("%d events in %d requests, %d changes: want the update thrice", events, len(requests), len(changes))
		}
		for _, c := range changes {
			if c.Op != cdc.OpUpdate {
				return fmt.Errorf("a %s change, want only the update", c.Op)
			}
		}
		return nil
	})
}
