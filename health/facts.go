package health

import (
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// sample is what one evaluation reads of cdcd's metrics. Counters are
// cumulative since the process started.
type sample struct {
	at time.Time
	// capture is set when this process reads the replication slot.
	capture         bool
	lagBytes        float64
	confirmedLSN    float64
	pipelines       map[string]*pipelineSample
	webhookRequests map[string]float64 // by system
	webhookRefused  map[string]float64 // answered 4xx or 5xx, by system
}

type pipelineSample struct {
	delivered, errors, backlog float64
	conflictsOpen, escalated   float64
	// oldestPending is the commit time (Unix seconds) of the oldest change
	// not delivered yet; 0 when none waits.
	oldestPending float64
}

// gather reads the sample of the pipelines named in routes (pipeline
// names; Kafka consumer groups end in "."+name) from g.
func gather(g prometheus.Gatherer, names []string, at time.Time) (*sample, error) {
	mfs, err := g.Gather()
	s := &sample{
		at:              at,
		pipelines:       make(map[string]*pipelineSample, len(names)),
		webhookRequests: map[string]float64{},
		webhookRefused:  map[string]float64{},
	}
	for _, n := range names {
		s.pipelines[n] = &pipelineSample{}
	}
	// A delivery pipeline counts its records; a plain sink on the
	// in-process bus only the bus's writes.
	viaDelivery := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "cdcd_sink_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			p := s.pipelines[label(m, "pipeline")]
			if p == nil {
				continue
			}
			viaDelivery[label(m, "pipeline")] = true
			switch label(m, "result") {
			case "delivered":
				p.delivered += value(m)
			case "retried", "dead_lettered":
				p.errors += value(m)
			}
		}
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "cdcd_capture_lag_bytes":
				s.capture, s.lagBytes = true, value(m)
			case "cdcd_capture_confirmed_lsn":
				s.capture, s.confirmedLSN = true, value(m)
			case "cdcd_sink_queue_depth":
				if p := s.pipelines[label(m, "pipeline")]; p != nil {
					p.backlog += value(m)
				}
			case "cdcd_sink_oldest_pending_timestamp_seconds":
				if p := s.pipelines[label(m, "pipeline")]; p != nil {
					p.oldestPending = value(m)
				}
			case "cdcd_bus_queue_depth":
				if p := s.pipelines[label(m, "route")]; p != nil {
					p.backlog += value(m)
				}
			case "cdcd_bus_delivered_total":
				if r := label(m, "route"); s.pipelines[r] != nil && !viaDelivery[r] {
					s.pipelines[r].delivered += value(m)
				}
			case "cdcd_bus_write_retries_total":
				if r := label(m, "route"); s.pipelines[r] != nil && !viaDelivery[r] {
					s.pipelines[r].errors += value(m)
				}
			case "cdcd_kafka_consumer_lag":
				if p := s.pipelines[groupPipeline(label(m, "group"), names)]; p != nil {
					p.backlog += value(m)
				}
			case "cdcd_conflicts_open":
				if p := s.pipelines[label(m, "pipeline")]; p != nil {
					p.conflictsOpen += value(m)
					if label(m, "status") == "escalated" {
						p.escalated += value(m)
					}
				}
			case "cdcd_webhook_requests_total":
				sys := label(m, "system")
				s.webhookRequests[sys] += value(m)
				if code, _ := strconv.Atoi(label(m, "status")); code >= 400 {
					s.webhookRefused[sys] += value(m)
				}
			}
		}
	}
	return s, err
}

// groupPipeline is the pipeline of a Kafka consumer group
// (<topic_prefix>.<pipeline>; the prefix may hold dots too).
func groupPipeline(group string, names []string) string {
	best := ""
	for _, n := range names {
		if strings.HasSuffix(group, "."+n) && len(n) > len(best) {
			best = n
		}
	}
	return best
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}
