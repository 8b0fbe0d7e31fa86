package delivery

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cdcd-dev/cdcd/internal/promshare"
)

// metrics are one pipeline's series. Every pipeline registers the same
// vectors on the registry; the first registration is shared.
type metrics struct {
	delivered, retried, dead, skipped prometheus.Counter
	writeSeconds                      prometheus.Observer
	depth                             prometheus.Gauge
	oldest                            *oldestPending
	deadStoreFailures                 prometheus.Counter
	deadStoreDown                     prometheus.Gauge
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
	oldest, err := promshare.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cdcd_sink_oldest_pending_timestamp_seconds",
		Help: "Commit time (Unix seconds) of the oldest change not yet delivered or dead-lettered of the Writes whose calls are not over; 0 while none waits.",
	}, []string{"pipeline"}))
	if err != nil {
		return nil, err
	}
	storeFailures, err := promshare.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cdcd_sink_dead_letter_store_failures_total",
		Help: "Failed attempts to store dead letters; the pipeline waits until they are stored.",
	}, []string{"pipeline", "system"}))
	if err != nil {
		return nil, err
	}
	storeDown, err := promshare.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cdcd_sink_dead_letter_store_failing",
		Help: "1 while the pipeline's last attempt to store dead letters failed, else 0.",
	}, []string{"pipeline", "system"}))
	if err != nil {
		return nil, err
	}
	return &metrics{
		deadStoreFailures: storeFailures.WithLabelValues(pipeline, system),
		deadStoreDown:     storeDown.WithLabelValues(pipeline, system),
		delivered:         events.WithLabelValues(pipeline, system, "delivered"),
		retried:           events.WithLabelValues(pipeline, system, "retried"),
		dead:              events.WithLabelValues(pipeline, system, "dead_lettered"),
		skipped:           events.WithLabelValues(pipeline, system, "skipped"),
		writeSeconds:      seconds.WithLabelValues(pipeline, system),
		depth:             depth.WithLabelValues(pipeline),
		oldest:            &oldestPending{gauge: oldest.WithLabelValues(pipeline), writes: map[int]float64{}},
	}, nil
}

// oldestPending is the gauge of the oldest change still waiting for a
// Writer call, over every Write in flight: Writes overlap, so each keeps
// its own oldest commit time and the gauge shows the oldest of them.
type oldestPending struct {
	gauge  prometheus.Gauge
	mu     sync.Mutex
	next   int
	writes map[int]float64 // by Write: its oldest change's commit time
}

// begin notes a Write whose oldest change committed at t (Unix seconds);
// end says its calls are over. end may be called more than once.
func (o *oldestPending) begin(t float64) (end func()) {
	o.mu.Lock()
	id := o.next
	o.next++
	o.writes[id] = t
	o.set()
	o.mu.Unlock()
	return func() {
		o.mu.Lock()
		delete(o.writes, id)
		o.set()
		o.mu.Unlock()
	}
}

func (o *oldestPending) set() {
	oldest := 0.0
	for _, t := range o.writes {
		if oldest == 0 || t < oldest {
			oldest = t
		}
	}
	o.gauge.Set(oldest)
}
