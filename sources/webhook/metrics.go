package webhook

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// unknownSystem labels requests for systems that are not mounted, so a
// scanner cannot grow the label set.
const unknownSystem = "unknown"

type metrics struct {
	requests   *prometheus.CounterVec
	seconds    *prometheus.HistogramVec
	duplicates *prometheus.CounterVec
	ignored    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcd_webhook_requests_total",
			Help: "Webhook deliveries received, by system and HTTP status answered.",
		}, []string{"system", "status"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cdcd_webhook_seconds",
			Help:    "Time to answer a webhook delivery, by system.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2, 4, 8},
		}, []string{"system"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcd_webhook_duplicates_total",
			Help: "Inbound changes dropped because their delivery id was already accepted.",
		}, []string{"system"}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcd_webhook_events_ignored_total",
			Help: "Well-formed webhook events of kinds cdcd does not sync (associations, other objects), acknowledged and dropped.",
		}, []string{"system"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.seconds, m.duplicates, m.ignored} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register webhook metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(system string, status int, d time.Duration) {
	m.requests.WithLabelValues(system, strconv.Itoa(status)).Inc()
	m.seconds.WithLabelValues(system).Observe(d.Seconds())
}
