package inbox

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	accepted   *prometheus.CounterVec
	duplicates *prometheus.CounterVec
	commits    prometheus.Histogram
	batch      prometheus.Histogram
	pending    prometheus.Gauge
	handed     prometheus.Counter
	delivered  prometheus.Counter
	unreadable prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcd_inbox_accepted_total", Help: "Webhook changes committed to cdcd.inbox, by system.",
		}, []string{"system"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcd_inbox_duplicates_total", Help: "Webhook changes dropped at commit because their delivery id was accepted before, by system.",
		}, []string{"system"}),
		commits: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cdcd_inbox_commit_seconds", Help: "Time to commit one batch of accepted changes.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cdcd_inbox_commit_deliveries", Help: "Deliveries sharing one inbox commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cdcd_inbox_pending", Help: "Changes in cdcd.inbox not yet delivered by the bus.",
		}),
		handed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cdcd_inbox_handed_total", Help: "Changes handed from cdcd.inbox to the bus (again after a restart or a refusal).",
		}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cdcd_inbox_delivered_total", Help: "Changes the bus delivered and that were deleted from cdcd.inbox.",
		}),
		unreadable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cdcd_inbox_unreadable_total", Help: "cdcd.inbox rows that could not be decoded and were skipped.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.accepted, m.duplicates, m.commits, m.batch, m.pending, m.handed, m.delivered, m.unreadable} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
