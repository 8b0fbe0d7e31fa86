package delivery_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/ratelimit"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	v := newVendor()
	h := newHarness(t, delivery.PipelineConfig{}, v)
	h.write(t, ev(1, 0, 1, cdc.OpCreate, "a=1"), ev(1, 1, 2, cdc.OpCreate, "skip=1"))

	// A second pipeline on the same registry shares the vectors.
	other, err := delivery.NewPipeline(delivery.PipelineConfig{Name: "deals-to-crm", System: "crm"}, h.m, v, delivery.Stores{}, zerolog.Nop(), h.reg)
	if err != nil {
		t.Fatalf("second pipeline on one registry: %v", err)
	}
	if err := other.Write(context.Background(), []cdc.Event{ev(2, 0, 3, cdc.OpCreate, "a=1")}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		pipeline, result string
		want             float64
	}{
		{"contacts-to-crm", "delivered", 1},
		{"contacts-to-crm", "skipped", 1},
		{"deals-to-crm", "delivered", 1},
	} {
		got := h.counter(t, "cdcd_sink_events_total", map[string]string{"pipeline": c.pipeline, "system": "crm", "result": c.result})
		if got != c.want {
			t.Errorf("%s %s = %v, want %v", c.pipeline, c.result, got, c.want)
		}
	}
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]int{}
	for _, mf := range mfs {
		series[mf.GetName()] = len(mf.GetMetric())
		if mf.GetName() == "cdcd_sink_write_seconds" {
			for _, m := range mf.GetMetric() {
				if m.GetHistogram().GetSampleCount() != 1 {
					t.Errorf("write_seconds %v: %d samples, want 1", m.GetLabel(), m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	if series["cdcd_sink_write_seconds"] != 2 || series["cdcd_sink_queue_depth"] != 2 {
		t.Errorf("series per metric %v", series)
	}
}

func TestLimitersReportWaitingPerAccount(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	ls := ratelimit.NewLimiters()
	reg.MustRegister(ls)
	l := ls.For("hubspot:portal-1", ratelimit.Rate{Requests: 1, Per: 20 * time.Millisecond})
	ls.For("slack:abc", ratelimit.Rate{Requests: 10, Per: time.Second})
	for range 2 {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "cdcd_sink_rate_limit_wait_seconds_total" {
			for _, m := range mf.GetMetric() {
				got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if got["hubspot:portal-1"] < 0.015 || got["slack:abc"] != 0 || len(got) != 2 {
		t.Errorf("waits by account %v, want about 0.02s for hubspot:portal-1 and 0 for slack:abc", got)
	}
}

// While a batch waits to be delivered, the pipeline reports the commit
// time of its oldest change (the health rule oldest_undelivered reads it),
// and 0 once nothing waits.
func TestOldestPendingCommitTime(t *testing.T) {
	t.Parallel()
	v := newVendor()
	var h *harness
	during := -1.0
	v.fail = func(_ delivery.Record, attempt int) error {
		if attempt == 1 {
			during = h.counter(t, "cdcd_sink_oldest_pending_timestamp_seconds", map[string]string{"pipeline": "contacts-to-crm"})
			return transient("503 service unavailable")
		}
		return nil
	}
	h = newHarness(t, delivery.PipelineConfig{}, v)
	h.write(t, ev(1, 0, 1, cdc.OpCreate, "a=1"))
	if during != 1700000000 {
		t.Errorf("oldest pending while retrying = %v, want the change's commit time 1700000000", during)
	}
	if after := h.counter(t, "cdcd_sink_oldest_pending_timestamp_seconds", map[string]string{"pipeline": "contacts-to-crm"}); after != 0 {
		t.Errorf("oldest pending once delivered = %v, want 0", after)
	}
}
