package health

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/store"
)

var pg cdctest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Destroy()
	os.Exit(code)
}

func openStore(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), pg.DB(t, "health"), zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// fakeDelivery registers the series a delivery pipeline keeps, on its own
// registry.
type fakeDelivery struct {
	reg    *prometheus.Registry
	events *prometheus.CounterVec
	depth  *prometheus.GaugeVec
}

func newFakeDelivery() *fakeDelivery {
	f := &fakeDelivery{
		reg:    prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cdcd_sink_events_total"}, []string{"pipeline", "system", "result"}),
		depth:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cdcd_sink_queue_depth"}, []string{"pipeline"}),
	}
	f.reg.MustRegister(f.events, f.depth)
	return f
}

func (f *fakeDelivery) deliver(p string, n float64) {
	f.events.WithLabelValues(p, "crm", "delivered").Add(n)
	f.depth.WithLabelValues(p).Set(0)
}

func (f *fakeDelivery) fail(p string) {
	f.events.WithLabelValues(p, "crm", "retried").Inc()
	f.depth.WithLabelValues(p).Set(1)
}

func testHealth() config.Health {
	h := config.DefaultHealth()
	h.Hold = 10 * time.Second
	h.Pipeline.Failing = &config.Levels[time.Duration]{Degraded: 10 * time.Second, Unhealthy: time.Minute}
	return h
}

// A sink that starts failing every call is reported degraded once the
// failing rule and the hold allow (within 30 s), unhealthy per its rule,
// and a transition is stored for each change, with its figures; a
// recovery leaves unhealthy after the hold.
func TestFailingSinkTransitions(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	f := newFakeDelivery()
	ctx := context.Background()
	m, err := New(testHealth(), []Pipeline{{Name: "contacts", System: "crm"}}, f.reg, st, zerolog.New(zerolog.NewTestWriter(t)), f.reg)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for s := 0; s <= 20; s += 5 {
		f.deliver("contacts", 10)
		m.Evaluate(ctx, at(s))
	}
	if r := m.Report(); r.State != OK {
		t.Fatalf("before the failure: %s (%s), want ok", r.State, r.Reason)
	}
	failedAt := 25
	degradedAt, unhealthyAt := -1, -1
	for s := failedAt; s <= failedAt+120; s += 5 {
		f.fail("contacts")
		m.Evaluate(ctx, at(s))
		got := pipelineState(t, m, "contacts")
		if got >= Degraded && degradedAt < 0 {
			degradedAt = s
		}
		if got == Unhealthy && unhealthyAt < 0 {
			unhealthyAt = s
		}
	}
	if degradedAt < 0 || degradedAt-failedAt > 30 {
		t.Errorf("degraded %ds after the sink started failing, want within 30s", degradedAt-failedAt)
	}
	if unhealthyAt < 0 || unhealthyAt-failedAt > 60+10+5 {
		t.Errorf("unhealthy %ds after the sink started failing, want once it failed for 1m, held 10s", unhealthyAt-failedAt)
	}
	r := m.Report()
	if r.State != Unhealthy || !strings.Contains(r.Reason, "crm answered nothing but errors") {
		t.Errorf("overall %s (%s), want unhealthy saying crm answers only errors", r.State, r.Reason)
	}
	if got := testutil.ToFloat64(stateCollectorOf(m, KindPipeline, "contacts")); got != 2 {
		t.Errorf("cdcd_health_state{kind=pipeline,name=contacts} = %v, want 2", got)
	}
	recovered := failedAt + 125
	for s := recovered; s <= recovered+30; s += 5 {
		f.deliver("contacts", 1)
		m.Evaluate(ctx, at(s))
	}
	if got := pipelineState(t, m, "contacts"); got == Unhealthy {
		t.Errorf("30s after recovering: still unhealthy")
	}
	ts, err := st.HealthTransitions(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	var seq []string
	for i := len(ts) - 1; i >= 0; i-- {
		if ts[i].Kind == KindPipeline {
			seq = append(seq, ts[i].Previous+">"+ts[i].State)
		}
	}
	if len(seq) < 3 || seq[0] != "ok>degraded" || seq[1] != "degraded>unhealthy" || seq[2] != "unhealthy>degraded" {
		t.Errorf("pipeline transitions %v, want ok>degraded, degraded>unhealthy, unhealthy>degraded (the error rate of the hour)", seq)
	}
	for _, tr := range ts {
		if tr.Kind == KindPipeline && tr.State == "unhealthy" {
			if tr.Figures["failing_seconds"].(float64) < 60 {
				t.Errorf("unhealthy transition's figures %v, want failing_seconds >= 60", tr.Figures)
			}
		}
	}
	kinds := map[string]int{}
	for _, tr := range ts {
		kinds[tr.Kind]++
	}
	if kinds[KindSystem] == 0 || kinds[KindCDCD] == 0 {
		t.Errorf("transitions by kind %v, want the system crm and cdcd too", kinds)
	}
}

func pipelineState(t *testing.T, m *Monitor, name string) State {
	t.Helper()
	for _, s := range m.Report().Subjects {
		if s.Kind == KindPipeline && s.Name == name {
			return s.State
		}
	}
	t.Fatalf("no pipeline %s in the report", name)
	return OK
}

// stateCollectorOf returns the state gauge of one subject.
func stateCollectorOf(m *Monitor, kind, name string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
	for _, s := range m.Report().Subjects {
		if s.Kind == kind && s.Name == name {
			g.Set(float64(s.State))
		}
	}
	return g
}

// A state that does not hold for health.hold is never reported: a single
// failed write between successes changes nothing.
func TestNoFlapping(t *testing.T) {
	t.Parallel()
	f := newFakeDelivery()
	ctx := context.Background()
	m, err := New(testHealth(), []Pipeline{{Name: "contacts", System: "crm"}}, f.reg, nil, zerolog.New(zerolog.NewTestWriter(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for s := 0; s <= 300; s += 5 {
		if s%20 == 0 {
			f.fail("contacts")
		} else {
			f.deliver("contacts", 50)
		}
		m.Evaluate(ctx, t0.Add(time.Duration(s)*time.Second))
		if r := m.Report(); r.State != OK {
			t.Fatalf("at %ds: %s (%s), want ok: nothing failed for 10s", s, r.State, r.Reason)
		}
	}
}

// A change waiting longer than oldest_undelivered since its commit makes
// its pipeline degraded, saying how old it is.
func TestOldestUndelivered(t *testing.T) {
	t.Parallel()
	f := newFakeDelivery()
	oldest := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cdcd_sink_oldest_pending_timestamp_seconds"}, []string{"pipeline"})
	f.reg.MustRegister(oldest)
	m, err := New(testHealth(), []Pipeline{{Name: "contacts", System: "crm"}}, f.reg, nil, zerolog.New(zerolog.NewTestWriter(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	oldest.WithLabelValues("contacts").Set(float64(t0.Add(-20 * time.Minute).Unix()))
	for s := 0; s <= 15; s += 5 {
		f.deliver("contacts", 1) // others get through; this one waits
		m.Evaluate(context.Background(), t0.Add(time.Duration(s)*time.Second))
	}
	r := m.Report()
	if r.State != Degraded || !strings.Contains(r.Reason, "the oldest change waiting committed 20m") {
		t.Errorf("%s (%s), want degraded: the oldest change is 20m old", r.State, r.Reason)
	}
}

// With several processes judging one pipeline (sinks workers of a group),
// the deployment's transitions are of the worst state any reports: the
// process that holds none of the failing partitions finds it ok and
// resolves nothing; once the failing process stops, the state is what
// the others find, at their next evaluation.
func TestProcessesShareTransitions(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ctx := context.Background()
	log := zerolog.New(zerolog.NewTestWriter(t))
	failing, fine := newFakeDelivery(), newFakeDelivery()
	a, err := New(testHealth(), []Pipeline{{Name: "contacts", System: "crm"}}, failing.reg, st, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(testHealth(), []Pipeline{{Name: "contacts", System: "crm"}}, fine.reg, st, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for s := 0; s <= 60; s += 5 {
		now := t0.Add(time.Duration(s) * time.Second)
		failing.fail("contacts")
		a.Evaluate(ctx, now)
		fine.deliver("contacts", 10)
		b.Evaluate(ctx, now)
	}
	if got := pipelineState(t, a, "contacts"); got != Degraded {
		t.Fatalf("the failing process finds %s, want degraded", got)
	}
	if got := pipelineState(t, b, "contacts"); got != OK {
		t.Fatalf("the other process finds %s, want ok", got)
	}
	if got := lastStates(t, st); got["pipeline/contacts"] != "degraded" || got["system/crm"] != "degraded" || got["cdcd/cdcd"] != "degraded" {
		t.Fatalf("stored states %v, want the pipeline, its system and cdcd degraded", got)
	}
	a.withdraw() // a stops
	b.Evaluate(ctx, t0.Add(65*time.Second))
	if got := lastStates(t, st); got["pipeline/contacts"] != "ok" || got["cdcd/cdcd"] != "ok" {
		t.Fatalf("stored states %v after the failing process stopped, want ok", got)
	}
	ts, err := st.HealthTransitions(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tr := range ts {
		if tr.Kind == KindPipeline {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d pipeline transitions, want 2 (ok>degraded, degraded>ok): %+v", n, ts)
	}
}

// A failed job is judged and its transition stored like any other.
func TestFailedJobTransitionStored(t *testing.T) {
	t.Parallel()
	url := pg.DB(t, "health")
	st, err := store.Open(context.Background(), url, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO cdcd.jobs (kind, pipeline, status, finished_at, updated_at) VALUES ('import', 'c', 'failed', now(), now())`); err != nil {
		t.Fatal(err)
	}
	m, err := New(testHealth(), nil, prometheus.NewRegistry(), st, zerolog.New(zerolog.NewTestWriter(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for s := 0; s <= 20; s += 5 {
		m.Evaluate(ctx, t0.Add(time.Duration(s)*time.Second))
	}
	if got := lastStates(t, st)["jobs/jobs"]; got != "degraded" {
		t.Errorf("stored jobs state %q, want degraded", got)
	}
}

func lastStates(t *testing.T, st *store.Store) map[string]string {
	t.Helper()
	last, err := st.LastHealthStates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, tr := range last {
		out[k] = tr.State
	}
	return out
}
