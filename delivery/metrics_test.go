package delivery_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
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
	if series["cdcd_sink_write_seconds"] != 2 || series["cdcd_sink_queue_depth"] != 2 || series["cdcd_sink_rate_limit_wait_seconds_total"] != 1 {
		t.Errorf("series per metric %v", series)
	}
}

func TestWaitMeterCountsLimiterWaits(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := delivery.NewWaitMeter(reg, "hubspot")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := delivery.NewWaitMeter(reg, "hubspot"); err != nil { // each writer may ask
		t.Fatal(err)
	}
	l := delivery.NewLimiter(delivery.Rate{Requests: 1, Per: 20 * time.Millisecond})
	for range 2 {
		if err := m.Wait(context.Background(), l); err != nil {
			t.Fatal(err)
		}
	}
	c, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got float64
	for _, mf := range c {
		if mf.GetName() == "cdcd_sink_rate_limit_wait_seconds_total" {
			got = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if got < 0.015 {
		t.Errorf("counted %vs of waiting, want about 0.02s", got)
	}
	var none *delivery.WaitMeter
	if err := none.Wait(context.Background(), delivery.NewLimiter(delivery.Rate{Requests: 1, Per: time.Second})); err != nil {
		t.Errorf("nil meter: %v", err)
	}
}
