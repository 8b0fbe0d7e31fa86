package health

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/store"
)

// Journal keeps what every process of a deployment reports, decides
// the transitions from it, and counts what lives in cdcd's tables;
// *store.Store is one.
type Journal interface {
	ReportHealth(ctx context.Context, reporter string, ttl, remind time.Duration, reports []store.HealthReport) ([]store.HealthTransition, error)
	WithdrawHealth(ctx context.Context, reporter string) error
	LastHealthStates(ctx context.Context) (map[string]store.HealthTransition, error)
	HealthCounts(ctx context.Context) (store.HealthCounts, error)
	PruneHealth(ctx context.Context, olderThan time.Duration) (int64, error)
}

// Pipeline names a pipeline to judge and the system it writes to (for an
// inbound pipeline, the system it reads).
type Pipeline struct {
	Name, System string
}

// Subject kinds, as stored in cdcd.health_transitions.kind.
const (
	KindCDCD     = "cdcd"
	KindCapture  = "capture"
	KindSystem   = "system"
	KindPipeline = "pipeline"
	KindJobs     = "jobs"
	// kindWebhooks is a system's webhook intake: judged and held like a
	// subject, reported through its system.
	kindWebhooks = "webhooks"
)

// Monitor evaluates the rules every health.interval. Run owns the
// evaluation; Report and the metrics read its last outcome.
type Monitor struct {
	cfg       config.Health
	pipelines []Pipeline
	names     []string
	gatherer  prometheus.Gatherer
	journal   Journal // nil keeps transitions in memory only
	reporter  string  // this process, among those reporting to journal
	log       zerolog.Logger
	evalTime  prometheus.Histogram

	// Owned by the evaluating goroutine.
	subjects     map[string]*subject // by kind/name
	judged       []*subject          // by the last evaluation
	tracks       map[string]*pipelineTrack
	capture      captureTrack
	webhooks     map[string]*history // refused deliveries, by system
	counts       store.HealthCounts
	countsErr    bool
	lastProgress time.Time

	mu     sync.RWMutex
	report Report
}

// New returns a monitor of pipelines that reads the metrics g gathers and
// stores transitions in j (nil: none stored). It registers
// cdcd_health_state and cdcd_health_evaluation_seconds on reg.
func New(cfg config.Health, pipelines []Pipeline, g prometheus.Gatherer, j Journal, log zerolog.Logger, reg prometheus.Registerer) (*Monitor, error) {
	m := &Monitor{
		cfg:       cfg,
		pipelines: pipelines,
		gatherer:  g,
		journal:   j,
		reporter:  reporterID(),
		log:       log.With().Str("component", "health").Logger(),
		subjects:  map[string]*subject{},
		tracks:    map[string]*pipelineTrack{},
		webhooks:  map[string]*history{},
		counts:    store.HealthCounts{FailedJobs: -1},
		evalTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cdcd_health_evaluation_seconds",
			Help:    "Time to evaluate the health rules once.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 8),
		}),
		report: Report{State: OK, Reason: "starting"},
	}
	for _, p := range pipelines {
		m.names = append(m.names, p.Name)
		m.tracks[p.Name] = &pipelineTrack{system: p.System, rules: cfg.Pipelines[p.Name].Merged(cfg.Pipeline)}
	}
	if reg != nil {
		if err := reg.Register(m.evalTime); err != nil {
			return nil, fmt.Errorf("register health metrics: %w", err)
		}
		if err := reg.Register(stateCollector{m}); err != nil {
			return nil, fmt.Errorf("register health metrics: %w", err)
		}
	}
	return m, nil
}

// Run evaluates every interval until ctx ends. It first takes up the
// states stored by the last run, so that a restart does not announce them
// again.
func (m *Monitor) Run(ctx context.Context) error {
	if m.journal != nil {
		last, err := m.journal.LastHealthStates(ctx)
		if err != nil {
			m.log.Warn().Err(err).Msg("health states of the last run unreadable; starting from ok")
		}
		for _, t := range last {
			st, _ := ParseState(t.State)
			s := m.subject(t.Kind, t.Name, "")
			s.state, s.reason, s.since = st, t.Reason, t.At
			s.live, s.pending = st, st
		}
	}
	tick := time.NewTicker(m.cfg.Interval)
	defer tick.Stop()
	var pruneC <-chan time.Time // nil, never ready, when nothing is pruned
	if m.journal != nil && m.cfg.Retention > 0 {
		prune := time.NewTicker(config.PruneEvery(m.cfg.Retention))
		defer prune.Stop()
		pruneC = prune.C
	}
	m.Evaluate(ctx, time.Now())
	for {
		select {
		case <-ctx.Done():
			m.withdraw()
			return nil
		case <-tick.C:
			m.Evaluate(ctx, time.Now())
		case <-pruneC:
			if n, err := m.journal.PruneHealth(ctx, m.cfg.Retention); err != nil {
				m.log.Warn().Err(err).Msg("pruning health transitions")
			} else if n > 0 {
				m.log.Debug().Int64("deleted", n).Msg("health transitions pruned")
			}
		}
	}
}

// subject is one judged thing: its reported state, and the state the
// last evaluation found, pending until it holds for health.hold.
type subject struct {
	kind, name, system string
	state              State // reported
	reason             string
	since              time.Time
	figures            map[string]float64
	series             *Series
	live               State
	liveReason         string
	pending            State
	pendingSince       time.Time
}

func (m *Monitor) subject(kind, name, system string) *subject {
	key := kind + "/" + name
	s := m.subjects[key]
	if s == nil {
		s = &subject{kind: kind, name: name, state: OK, reason: "ok", live: OK, pending: OK}
		m.subjects[key] = s
	}
	if system != "" {
		s.system = system
	}
	return s
}

// held judges s as found now: a state other than the reported one is
// reported once it has held for hold. It returns whether s changed state.
func (s *subject) held(st State, reason string, now time.Time, hold time.Duration) bool {
	s.live, s.liveReason = st, reason
	if st == s.state {
		s.pending, s.pendingSince = st, time.Time{}
		s.reason = reason
		return false
	}
	if st != s.pending || s.pendingSince.IsZero() {
		s.pending, s.pendingSince = st, now
	}
	return now.Sub(s.pendingSince) >= hold
}

// derived sets s to a state computed from held subjects, at once.
func (s *subject) derived(st State, reason string) bool {
	s.live, s.liveReason, s.pending = st, reason, st
	if st == s.state {
		s.reason = reason
		return false
	}
	return true
}

type change struct {
	s        *subject
	previous State
}

// Evaluate reads the figures, judges every subject and stores the
// transitions. Run calls it every interval; tests call it with their own
// clock.
func (m *Monitor) Evaluate(ctx context.Context, now time.Time) {
	start := time.Now()
	defer func() { m.evalTime.Observe(time.Since(start).Seconds()) }()
	smp, err := gather(m.gatherer, m.names, now)
	if err != nil {
		m.log.Debug().Err(err).Msg("some metrics could not be gathered")
	}
	if m.journal != nil {
		c, err := m.journal.HealthCounts(ctx)
		if err != nil && !m.countsErr {
			m.log.Warn().Err(err).Msg("health figures from cdcd's tables unreadable; judging without them")
		}
		m.countsErr = err != nil
		if err == nil {
			m.counts = c
		}
	}
	hold := m.cfg.Hold
	var changes []change
	judge := func(s *subject, fs []finding, fig map[string]float64) {
		st, reason := verdict(fs)
		s.figures = fig
		prev := s.state
		if s.held(st, reason, now, hold) {
			s.report(now)
			changes = append(changes, change{s, prev})
		}
	}
	var heldSubjects []*subject
	for _, p := range m.pipelines {
		t := m.tracks[p.Name]
		prevActivity := t.activity
		fs, fig := t.observe(smp.pipelines[p.Name], m.counts.DeadLetters[p.Name], now)
		s := m.subject(KindPipeline, p.Name, p.System)
		s.series = t.series()
		judge(s, fs, fig)
		heldSubjects = append(heldSubjects, s)
		if t.activity != prevActivity {
			m.log.Debug().Str("pipeline", p.Name).Str("system", p.System).Str("activity", t.activity).
				Float64("backlog", fig["backlog"]).Float64("failing_seconds", fig["failing_seconds"]).
				Float64("stalled_seconds", fig["stalled_seconds"]).Float64("errors_1h", fig["errors_1h"]).
				Msg("pipeline activity changed")
		}
	}
	if smp.capture {
		fs, fig := m.capture.observe(smp, m.cfg.Capture, now)
		s := m.subject(KindCapture, "postgres", "")
		s.series = &Series{Backlog: m.capture.lag.values()}
		judge(s, fs, fig)
		heldSubjects = append(heldSubjects, s)
	}
	for _, sys := range slices.Sorted(maps.Keys(smp.webhookRefused)) {
		h := m.webhooks[sys]
		if h == nil {
			h = &history{}
			m.webhooks[sys] = h
		}
		h.add(now, smp.webhookRefused[sys])
		n := h.delta(now)
		s := m.subject(kindWebhooks, sys, sys)
		judge(s, []finding{{level(m.cfg.Webhooks.Refusals, int64(n)), fmt.Sprintf("%.0f webhook deliveries refused in the last hour", n)}},
			map[string]float64{"webhook_refused_1h": n, "webhook_requests_total": smp.webhookRequests[sys]})
		heldSubjects = append(heldSubjects, s)
	}
	if m.counts.FailedJobs >= 0 {
		s := m.subject(KindJobs, "jobs", "")
		judge(s, []finding{{level(m.cfg.Jobs.Failed, m.counts.FailedJobs), fmt.Sprintf("%d jobs failed in the last day (cdcd jobs list)", m.counts.FailedJobs)}},
			map[string]float64{"failed_jobs": float64(m.counts.FailedJobs)})
		heldSubjects = append(heldSubjects, s)
	}
	derived, dchanges := m.derive(heldSubjects, now)
	changes = append(changes, dchanges...)
	m.judged = append(heldSubjects, derived...)
	m.logChanges(changes)
	m.store(ctx)
	m.publish(now)
	if m.lastProgress.IsZero() {
		m.lastProgress = now
	}
	if m.cfg.Progress > 0 && now.Sub(m.lastProgress) >= m.cfg.Progress {
		m.progress(now.Sub(m.lastProgress))
		m.lastProgress = now
	}
}

// derive sets the systems (their webhooks and pipelines) and cdcd as a
// whole from the held subjects' reported states.
// It returns them, and those that changed.
func (m *Monitor) derive(held []*subject, now time.Time) ([]*subject, []change) {
	var (
		changes []change
		derived []*subject
	)
	type agg struct {
		state   State
		reasons []string
		figures map[string]float64
	}
	systems := map[string]*agg{}
	overall := &agg{figures: map[string]float64{}}
	for _, s := range held {
		overall.state = max(overall.state, s.state)
		if s.state != OK {
			overall.reasons = append(overall.reasons, s.label()+": "+s.reason)
			overall.figures[s.state.String()]++
		}
		if s.system == "" {
			continue
		}
		a := systems[s.system]
		if a == nil {
			a = &agg{figures: map[string]float64{}}
			systems[s.system] = a
		}
		a.state = max(a.state, s.state)
		if s.kind == kindWebhooks {
			maps.Copy(a.figures, s.figures)
		} else {
			a.figures["pipelines"]++
		}
		if s.state != OK {
			a.reasons = append(a.reasons, s.label()+": "+s.reason)
			a.figures[s.state.String()]++
		}
	}
	set := func(s *subject, a *agg) {
		reason := "ok"
		if a.state != OK {
			reason = strings.Join(a.reasons, "; ")
		}
		s.figures = a.figures
		derived = append(derived, s)
		prev := s.state
		if s.derived(a.state, reason) {
			s.report(now)
			changes = append(changes, change{s, prev})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(systems)) {
		set(m.subject(KindSystem, name, ""), systems[name])
	}
	set(m.subject(KindCDCD, "cdcd", ""), overall)
	return derived, changes
}

func (s *subject) label() string {
	if s.kind == kindWebhooks {
		return "system " + s.name + " webhooks"
	}
	return s.kind + " " + s.name
}

// report makes the state found the reported one.
func (s *subject) report(now time.Time) {
	s.state, s.reason, s.since = s.live, s.liveReason, now
	s.pendingSince = time.Time{}
}

// logChanges logs each change of this process's view.
func (m *Monitor) logChanges(changes []change) {
	for _, c := range changes {
		s := c.s
		ev := m.log.Info()
		if s.state != OK {
			ev = m.log.Warn()
		}
		ev.Str("kind", s.kind).Str("name", s.name).Stringer("state", s.state).Stringer("previous", c.previous).
			Str("reason", s.reason).Msg("health changed")
	}
}

// store reports the states of the subjects judged to the journal, which
// stores the deployment's transitions (webhook intakes are reported
// through their system). A report lasts three evaluations and a hold, so
// that when a killed process's report lapses, the process that took its
// pipelines over has had time to judge them.
func (m *Monitor) store(ctx context.Context) {
	if m.journal == nil {
		return
	}
	reports := make([]store.HealthReport, 0, len(m.judged))
	for _, s := range m.judged {
		if s.kind == kindWebhooks {
			continue
		}
		reports = append(reports, store.HealthReport{Kind: s.kind, Name: s.name, State: s.state.String(),
			Reason: s.reason, Figures: anyMap(s.figures), Since: s.since})
	}
	ttl := 3*m.cfg.Interval + m.cfg.Hold
	ts, err := m.journal.ReportHealth(ctx, m.reporter, ttl, m.cfg.Remind, reports)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn().Err(err).Msg("health not stored")
		}
		return
	}
	for _, t := range ts {
		m.log.Debug().Str("kind", t.Kind).Str("name", t.Name).Str("state", t.State).Str("previous", t.Previous).
			Msg("deployment health transition stored")
	}
}

// withdraw removes this process's reports as it stops, leaving the
// subjects to the other processes at once.
func (m *Monitor) withdraw() {
	if m.journal == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.journal.WithdrawHealth(ctx, m.reporter); err != nil {
		m.log.Warn().Err(err).Msg("health reports not withdrawn; they lapse on their own")
	}
}

// reporterID names this process among a deployment's: host, process id
// and a random part, since a restarted process may get the same pid.
func reporterID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

func anyMap(f map[string]float64) map[string]any {
	out := make(map[string]any, len(f))
	for k, v := range f {
		out[k] = v
	}
	return out
}
