package pgwal

import (
	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	events       *prometheus.CounterVec
	byTable      map[tableOp]prometheus.Counter // cache: WithLabelValues is too slow per event
	transactions prometheus.Counter
	confirmed    prometheus.Gauge
	lag          prometheus.Gauge
	reconnects   prometheus.Counter
	publishWait  prometheus.Histogram
	gateWait     prometheus.Histogram
	heartbeats   prometheus.Counter
	standby      prometheus.Gauge
}

type tableOp struct {
	schema, table string
	op            cdc.Op
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcd_capture_events_total",
			Help: "Row changes captured from the WAL, by table and op (c, u, d, t).",
		}, []string{"table", "op"}),
		byTable: map[tableOp]prometheus.Counter{},
		transactions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cdcd_capture_transactions_total",
			Help: "Transactions captured from the WAL.",
		}),
		confirmed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cdcd_capture_confirmed_lsn",
			Help: "The LSN last confirmed to the server (everything before it is durable downstream).",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cdcd_capture_lag_bytes",
			Help: "Bytes of WAL between the server's current position and the confirmed LSN.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cdcd_capture_reconnects_total",
			Help: "Replication sessions that ended in an error and were retried.",
		}),
		publishWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cdcd_capture_publish_seconds",
			Help:    "Time to hand a batch to the bus, including backpressure waits.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		gateWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cdcd_capture_watermark_hold_seconds",
			Help:    "Time the stream waited at a backfill chunk's high watermark for the chunk before to be durable.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		heartbeats: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cdcd_capture_heartbeats_total",
			Help: "Heartbeat messages written to the WAL.",
		}),
		standby: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cdcd_capture_standby",
			Help: "1 while this process stands by because another one streams from the slot.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.transactions, m.confirmed, m.lag, m.reconnects, m.publishWait, m.gateWait, m.heartbeats, m.standby)
	}
	return m
}

// event counts one captured change. Only the stream goroutine calls it.
func (m *metrics) event(e *cdc.Event) { m.counter(e).Inc() }

// eventRun counts captured changes, each run of one table's and op's (a
// chunk's rows) with one addition.
func (m *metrics) eventRun(events []cdc.Event) {
	for i := 0; i < len(events); {
		e := &events[i]
		j := i + 1
		for j < len(events) && events[j].Op == e.Op && events[j].Table == e.Table && events[j].Schema == e.Schema {
			j++
		}
		m.counter(e).Add(float64(j - i))
		i = j
	}
}

func (m *metrics) counter(e *cdc.Event) prometheus.Counter {
	k := tableOp{e.Schema, e.Table, e.Op}
	c, ok := m.byTable[k]
	if !ok {
		c = m.events.WithLabelValues(e.Schema+"."+e.Table, e.Op.String())
		m.byTable[k] = c
	}
	return c
}
