package delivery

import (
	"github.com/cdcd-dev/cdcd/internal/promshare"
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
	events, err := promshare.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cdcd_sink_events_total",
		Help: "Records and events settled by delivery pipelines, by result (delivered, retried, dead_lettered, skipped).",
	}, []string{"pipeline", "system", "result"}))
	if err != nil {
		return nil, err
	}
	seconds, err := promshare.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cdcd_sink_write_seconds",
		Help:    "Duration of Writer calls to external systems.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
	}, []string{"pipeline", "system"}))
	if err != nil {
		return nil, err
	}
	depth, err := promshare.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
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
