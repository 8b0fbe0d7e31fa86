package http

import (
	"context"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// A record written as the JSON of its fields comes back with that JSON
// (Result.Encoded), which its link stores as the base; one written
// through a body template, or deleted, does not.
func TestResultEncodedIsTheBody(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(nethttp.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"7"}`))
	}))
	defer srv.Close()
	c := NewConfig()
	c.Create = &Request{Method: "POST", URL: srv.URL + "/items"}
	c.Update = &Request{Method: "PUT", URL: srv.URL + "/items/{{.ExternalID}}", Body: `{"n":{{json .Fields.name}}}`}
	c.Delete = &Request{Method: "DELETE", URL: srv.URL + "/items/{{.ExternalID}}"}
	c.IDPath = "id"
	w := newWriter(t, c)
	fields := map[string]any{"name": "Ann", "qty": 2.0}
	recs := []syncapi.Record{
		{Event: &cdc.Event{DeliveryID: "1"}, Op: cdc.OpCreate, Object: "items", Key: `{"id":1}`, Fields: fields},
		{Event: &cdc.Event{DeliveryID: "2"}, Op: cdc.OpUpdate, Object: "items", Key: `{"id":2}`, ExternalID: "5", Fields: fields},
		{Event: &cdc.Event{DeliveryID: "3"}, Op: cdc.OpDelete, Object: "items", Key: `{"id":3}`, ExternalID: "6"},
	}
	res, err := w.Write(context.Background(), recs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("record %d: %v", i, r.Err)
		}
	}
	if got := string(res[0].Encoded); got != `{"name":"Ann","qty":2}` || got != bodies[0] {
		t.Errorf("create: encoded %q, body %q", got, bodies[0])
	}
	if res[1].Encoded != nil || res[2].Encoded != nil {
		t.Errorf("templated update or delete came back encoded: %q, %q", res[1].Encoded, res[2].Encoded)
	}
}
