package store

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/ratelimit"
	sinkhttp "github.com/cdcd-dev/cdcd/sinks/http"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// Regression: a system that answered a create with an id no link can
// hold (\u0000 in it, or thousands of digits, past what the links'
// unique index takes) failed the store of the whole group of
// bookkeeping, so the Write failed and every record of it was sent again,
// forever. Such a record is now dead-lettered alone, saying why; the
// others of the Write are linked.
func TestPipelineDeadLettersAnIDNoLinkCanHold(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var huge strings.Builder // a number of 3,000 digits that do not compress
	for i := 1; huge.Len() < 3000; i++ {
		fmt.Fprint(&huge, i*7919%1000003)
	}
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		var body struct{ Email string }
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &body)
		w.WriteHeader(nethttp.StatusCreated)
		switch {
		case strings.HasPrefix(body.Email, "nul"):
			fmt.Fprint(w, `{"id":"a\u0000b"}`)
		case strings.HasPrefix(body.Email, "huge"):
			fmt.Fprintf(w, `{"id":%s}`, huge.String())
		default:
			fmt.Fprintf(w, `{"id":"n-%s"}`, body.Email)
		}
	}))
	t.Cleanup(srv.Close)
	c := sinkhttp.NewConfig()
	c.Rate = ratelimit.Rate{Requests: 1000, Per: time.Second}
	c.Create = &sinkhttp.Request{Method: "POST", URL: srv.URL + "/contacts"}
	log := zerolog.New(zerolog.NewTestWriter(t))
	w, err := sinkhttp.New("crm", c, log, ratelimit.NewLimiters())
	if err != nil {
		t.Fatal(err)
	}
	p, err := delivery.NewPipeline(delivery.PipelineConfig{Name: "contacts-to-crm", System: "crm", Object: "contacts"},
		contactMapper{}, w, delivery.Stores{Links: s.Links(), DeadLetters: s.DeadLetters(), Audit: s.Audit(), Tx: s.InTx},
		log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	err = p.Write(ctx, []cdc.Event{
		contactEvent(0x10, 1, cdc.OpCreate, "nul@example.com", "A"),
		contactEvent(0x10, 2, cdc.OpCreate, "ok@example.com", "B"),
		contactEvent(0x10, 3, cdc.OpCreate, "huge@example.com", "C"),
	})
	if err != nil {
		t.Fatalf("Write = %v, want the records it cannot link dead-lettered", err)
	}
	ref := func(id int) syncstate.LinkRef {
		return syncstate.LinkRef{System: "crm", Object: "contacts", Table: "public.contacts", Key: fmt.Sprintf(`{"id":%d}`, id)}
	}
	got, err := s.Links().Get(ctx, []syncstate.LinkRef{ref(1), ref(2), ref(3)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[ref(2)] == nil || got[ref(2)].ExternalID != "n-ok@example.com" {
		t.Fatalf("links %+v, want row 2's alone", got)
	}
	letters, err := s.ListDeadLetters(ctx, DeadLetterFilter{Pipeline: "contacts-to-crm"})
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 2 {
		t.Fatalf("dead letters %+v, want rows 1 and 3", letters)
	}
	why := map[string]string{`{"id":1}`: "holds NUL", `{"id":3}`: "bytes, more than 1024"}
	for _, l := range letters {
		if w, ok := why[l.Key]; !ok || !strings.Contains(l.Error, w) || !strings.Contains(l.Error, "cdcd cannot link") {
			t.Errorf("dead letter %s: %q", l.Key, l.Error)
		}
		delete(why, l.Key)
	}
}
