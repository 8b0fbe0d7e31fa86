package pagerduty

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/syncapi"
	pd "github.com/cdcd-dev/cdcd/vendortest/pagerduty"
)

const routingKey = "R0123456789abcdef0123456789abcde"

func testConfig(url string) *Config {
	c := DefaultConfig()
	c.URL = url
	c.RoutingKey = routingKey
	c.Summary = "{{.Fields.sku}} is low: {{.Fields.qty}} left"
	c.Severity = `{{if eq .Fields.qty 0}}critical{{else}}warning{{end}}`
	c.Component = "inventory"
	return c
}

func newWriter(t *testing.T, cfg *Config) *Writer {
	t.Helper()
	w, err := New("oncall", cfg, config.Env{Log: zerolog.New(zerolog.NewTestWriter(t)), Limiters: ratelimit.NewLimiters()})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func record(op cdc.Op, fields map[string]any) syncapi.Record {
	return syncapi.Record{
		Event: &cdc.Event{Op: op, Schema: "public", Table: "stock", CommitTime: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
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

func TestDeleteResolvesWhatCreateTriggered(t *testing.T) {
	t.Parallel()
	srv := pd.New(t)
	w := newWriter(t, testConfig(srv.URL()))

	res := write(t, w, record(cdc.OpCreate, map[string]any{"sku": "A-1", "qty": 0.0}))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	const key = `public.stock/{"sku":"A-1"}`
	if res.ExternalID != "" || srv.Alert(key) != pd.Triggered {
		t.Fatalf("external id %q (want none: records are not linked), alert %q", res.ExternalID, srv.Alert(key))
	}
	if res := write(t, w, record(cdc.OpDelete, map[string]any{})); res.Err != nil {
		t.Fatal(res.Err)
	}
	if srv.Alert(key) != pd.Resolved {
		t.Errorf("alert %q after the delete, want resolved", srv.Alert(key))
	}
	evs := srv.Events()
	if len(evs) != 2 || evs[0].EventAction != "trigger" || evs[1].EventAction != "resolve" || evs[1].Payload != nil {
		t.Fatalf("events %+v", evs)
	}
	p := evs[0].Payload
	if p.Summary != "A-1 is low: 0 left" || p.Severity != "critical" || p.Source != "cdcd" || p.Component != "inventory" ||
		p.Timestamp != "2026-03-01T12:00:00Z" || p.CustomDetails["sku"] != "A-1" || evs[0].RoutingKey != routingKey {
		t.Errorf("payload %+v", p)
	}
}

func TestActionField(t *testing.T) {
	t.Parallel()
	srv := pd.New(t)
	cfg := testConfig(srv.URL())
	cfg.ActionField = "action"
	w := newWriter(t, cfg)
	for _, a := range []string{"trigger", "acknowledge"} {
		if res := write(t, w, record(cdc.OpUpdate, map[string]any{"sku": "A-1", "qty": 3.0, "action": a})); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	if st := srv.Alert(`public.stock/{"sku":"A-1"}`); st != pd.Acknowledged {
		t.Errorf("alert %q, want acknowledged", st)
	}
	res := write(t, w, record(cdc.OpUpdate, map[string]any{"sku": "A-1", "qty": 3.0, "action": "page"}))
	if !cdc.IsPermanent(res.Err) || len(srv.Events()) != 2 {
		t.Errorf("bad action: %v, %d events", res.Err, len(srv.Events()))
	}
}

func TestLongKeysAndSummariesFitPagerDutyLimits(t *testing.T) {
	t.Parallel()
	srv := pd.New(t)
	cfg := testConfig(srv.URL())
	cfg.DedupKey = "{{.Fields.sku}}"
	w := newWriter(t, cfg)
	long := strings.Repeat("é", 2000)
	r := record(cdc.OpCreate, map[string]any{"sku": long, "qty": 1.0})
	res := write(t, w, r)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	key := srv.Events()[0].DedupKey
	if !strings.HasPrefix(key, "sha256:") || srv.Alert(key) != pd.Triggered {
		t.Errorf("dedup key %q", key)
	}
	if write(t, w, r); srv.Events()[1].DedupKey != key {
		t.Errorf("a long key maps to %q then %q", key, srv.Events()[1].DedupKey)
	}
	if s := srv.Events()[0].Payload.Summary; !strings.HasSuffix(s, "…") || len([]rune(s)) != 1024 {
		t.Errorf("summary of %d characters", len([]rune(s)))
	}
}

func TestClassifiesAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		resp      pd.Response
		permanent bool
		after     time.Duration
	}{
		{"invalid event", pd.Response{Status: 400, Body: `{"status":"invalid event"}`}, true, 0},
		{"throttled", pd.Response{Status: 429, RetryAfter: 3}, false, 3 * time.Second},
		{"throttled without retry-after", pd.Response{Status: 429}, false, 30 * time.Second},
		{"server error", pd.Response{Status: 502}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := pd.New(t)
			srv.Respond(tc.resp)
			res := write(t, newWriter(t, testConfig(srv.URL())), record(cdc.OpCreate, map[string]any{"sku": "A-1", "qty": 1.0}))
			if res.Err == nil || cdc.IsPermanent(res.Err) != tc.permanent {
				t.Fatalf("error %v, want permanent %v", res.Err, tc.permanent)
			}
			if d, _ := cdc.RetryAfterOf(res.Err); d != tc.after {
				t.Errorf("retry after %v, want %v", d, tc.after)
			}
			if strings.Contains(res.Err.Error(), routingKey) {
				t.Error("error quotes the routing key")
			}
		})
	}
}

func TestInvalidRecordIsPermanentAndNotSent(t *testing.T) {
	t.Parallel()
	srv := pd.New(t)
	cfg := testConfig(srv.URL())
	cfg.Severity = "{{.Fields.level}}"
	w := newWriter(t, cfg)
	for _, fields := range []map[string]any{
		{"sku": "A-1", "qty": 1.0, "level": "urgent"}, // not a PagerDuty severity
		{"sku": "A-1", "qty": 1.0},                    // template names a missing field
	} {
		if res := write(t, w, record(cdc.OpCreate, fields)); !cdc.IsPermanent(res.Err) {
			t.Errorf("%v: got %v, want permanent", fields, res.Err)
		}
	}
	if n := len(srv.Events()); n != 0 {
		t.Errorf("%d events sent", n)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	c.RoutingKey = "short"
	c.Action = "page"
	c.Source = ""
	c.Group = "{{"
	err := c.Validate()
	for _, path := range []string{"routing_key", "action", "summary", "source", "group"} {
		if err == nil || !strings.Contains(err.Error(), path+":") {
			t.Errorf("no problem reported for %s in %v", path, err)
		}
	}
	if strings.Contains(err.Error(), "short") {
		t.Error("validation quotes the routing key")
	}
}

// PagerDuty throttles a routing key past about 120 events a minute with a
// 429 that carries no Retry-After; the writer holds the key 30 s, as
// PagerDuty advises, instead of retrying at once.
func TestThrottlePausesTheRoutingKey(t *testing.T) {
	t.Parallel()
	srv := pd.New(t)
	srv.Limit(2)
	cfg := testConfig(srv.URL())
	cfg.Rate = ratelimit.Rate{Requests: 100, Per: time.Second}
	w := newWriter(t, cfg)
	for i, wantErr := range []bool{false, false, true} {
		res := write(t, w, record(cdc.OpCreate, map[string]any{"sku": fmt.Sprint("A-", i), "qty": 1.0}))
		if (res.Err != nil) != wantErr {
			t.Fatalf("event %d: %v", i, res.Err)
		}
		if d, _ := cdc.RetryAfterOf(res.Err); wantErr && d != 30*time.Second {
			t.Fatalf("event %d: retry after %v, want 30s", i, d)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res, _ := w.Write(ctx, []syncapi.Record{record(cdc.OpCreate, map[string]any{"sku": "B", "qty": 1.0})})
	if res[0].Err == nil || srv.Requests() != 3 {
		t.Fatalf("during the pause: %v after %d requests, want an error and no request", res[0].Err, srv.Requests())
	}
}
