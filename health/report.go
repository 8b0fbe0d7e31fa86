package health

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Report is the outcome of the last evaluation: what the status page,
// `cdcd status` and GET /api/status show.
type Report struct {
	At       time.Time `json:"at"`
	State    State     `json:"state"`
	Reason   string    `json:"reason"`
	Subjects []Status  `json:"subjects"`
}

// Status is one subject's reported state and its figures.
type Status struct {
	Kind   string    `json:"kind"`
	Name   string    `json:"name"`
	System string    `json:"system,omitempty"`
	State  State     `json:"state"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since,omitzero"`
	// Pending is a different state the last evaluation found, reported
	// once it holds for health.hold.
	Pending *Pending           `json:"pending,omitempty"`
	Figures map[string]float64 `json:"figures,omitempty"`
	Series  *Series            `json:"series,omitempty"`
}

// Pending is a state not reported yet.
type Pending struct {
	State  State     `json:"state"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

// Series are a subject's plots over the last hour, one point per minute,
// oldest first.
type Series struct {
	Delivered []float64 `json:"delivered_per_minute,omitempty"`
	ErrorRate []float64 `json:"error_rate,omitempty"`
	// Backlog is the records waiting (a pipeline) or the bytes behind
	// (the capture).
	Backlog []float64 `json:"backlog,omitempty"`
}

var kindOrder = map[string]int{KindCDCD: 0, KindCapture: 1, KindSystem: 2, KindJobs: 3, KindPipeline: 4}

// Report returns the last evaluation's outcome. It is safe to call
// concurrently with Run.
func (m *Monitor) Report() Report {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.report
}

func (m *Monitor) publish(now time.Time) {
	r := Report{At: now}
	for _, s := range m.judged {
		if s.kind == kindWebhooks {
			continue
		}
		st := Status{Kind: s.kind, Name: s.name, System: s.system, State: s.state, Reason: s.reason, Since: s.since,
			Figures: maps.Clone(s.figures), Series: s.series}
		if s.pending != s.state && !s.pendingSince.IsZero() {
			st.Pending = &Pending{State: s.pending, Reason: s.liveReason, Since: s.pendingSince}
		}
		if s.kind == KindCDCD {
			r.State, r.Reason = s.state, s.reason
		}
		r.Subjects = append(r.Subjects, st)
	}
	slices.SortFunc(r.Subjects, func(a, b Status) int {
		return cmp.Or(cmp.Compare(kindOrder[a.Kind], kindOrder[b.Kind]), strings.Compare(a.Name, b.Name))
	})
	m.mu.Lock()
	m.report = r
	m.mu.Unlock()
}

// Ready is a line for /readyz: the overall state and its reason. It never
// fails readiness: an unhealthy sink is no reason to stop taking webhooks.
func (m *Monitor) Ready() string {
	r := m.Report()
	return fmt.Sprintf("%s (%s)", r.State, r.Reason)
}

var stateDesc = prometheus.NewDesc("cdcd_health_state",
	"Reported health: 0 ok, 1 degraded, 2 unhealthy; kind is cdcd, capture, system, jobs or pipeline.",
	[]string{"kind", "name"}, nil)

// stateCollector reports the states at each scrape.
type stateCollector struct{ m *Monitor }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- stateDesc }

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.m.Report().Subjects {
		ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, float64(s.State), s.Kind, s.Name)
	}
}

// progress logs a line per pipeline: what it delivered since the last
// line, what waits, and the capture's position.
func (m *Monitor) progress(every time.Duration) {
	pos := ""
	if m.capture.confirmed > 0 {
		pos = LSNText(m.capture.confirmed)
		lag := m.capture.lag.last.v
		m.log.Info().Str("confirmed_lsn", pos).Float64("lag_bytes", lag).
			Float64("lag_seconds", m.subjects[KindCapture+"/postgres"].figures["lag_seconds"]).
			Float64("interval_seconds", every.Seconds()).Msg("capture progress")
	}
	for _, p := range m.pipelines {
		t := m.tracks[p.Name]
		s := m.subjects[KindPipeline+"/"+p.Name]
		delivered := t.delivered.last.v - t.lastProgressAmount
		t.lastProgressAmount = t.delivered.last.v
		ev := m.log.Info().Str("pipeline", p.Name).Str("system", p.System).Float64("delivered", delivered).
			Float64("interval_seconds", every.Seconds()).Float64("backlog", t.backlog.last.v).
			Float64("errors_1h", s.figures["errors_1h"]).Str("activity", t.activity).Stringer("state", s.state)
		if pos != "" {
			ev = ev.Str("confirmed_lsn", pos)
		}
		ev.Msg("pipeline progress")
	}
}
