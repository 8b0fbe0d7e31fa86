package kafkabus

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	produceSeconds prometheus.Histogram
	errors         prometheus.Counter
	messages       prometheus.Counter
	buffered       prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		produceSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cdcd_kafka_produce_seconds",
			Help:    "Time from handing a batch's first event to the producer until Kafka acknowledged or failed the batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cdcd_kafka_produce_errors_total",
			Help: "Produce batches that failed after every retry; their events were nacked.",
		}),
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cdcd_kafka_messages_total",
			Help: "Messages Kafka acknowledged (acks=all).",
		}),
		buffered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cdcd_kafka_buffered_events",
			Help: "Events handed to the producer and not yet settled.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.produceSeconds, m.errors, m.messages, m.buffered} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register kafka producer metrics: %w", err)
		}
	}
	return m, nil
}
