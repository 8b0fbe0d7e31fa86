package delivery

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are one pipeline's series. Every pipeline registers the same
// vectors on the registry; the first registration is shared.
type metrics struct {
	delivered, retried, dead, skipped prometheus.Counter
	writeSeconds                      prometheus.Observer
	depth                             prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, pipeline, system string) (*metrics, error) {
	events, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cdcd_sink_events_total",
		Help: "Records and events settled by delivery pipelines, by result (delivered, retried, dead_lettered, skipped).",
	}, []string{"pipeline", "system", "result"}))
	if err != nil {
		return nil, err
	}
	seconds, err := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cdcd_sink_write_seconds",
		Help:    "Duration of Writer calls to external systems.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
	}, []string{"pipeline", "system"}))
	if err != nil {
		return nil, err
	}
	depth, err := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cdcd_sink_queue_depth",
		Help: "Records of the current batch not yet delivered or dead-lettered.",
	}, []string{"pipeline"}))
	if err != nil {
		return nil, err
	}
	return &metrics{
		delivered:    events.WithLabelValues(pipeline, system, "delivered"),
		retried:      events.WithLabelValues(pipeline, system, "retried"),
		dead:         events.WithLabelValues(pipeline, system, "dead_lettered"),
		skipped:      events.WithLabelValues(pipeline, system, "skipped"),
		writeSeconds: seconds.WithLabelValues(pipeline, system),
		depth:        depth.WithLabelValues(pipeline),
	}, nil
}

// register registers c on reg, or returns the collector already registered
// under the same description. A nil reg registers nothing.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("register metrics: %w", err)
}
