package config

import (
	"strings"
	"testing"
	"time"
)

// A pipeline's override replaces the rules it names and keeps the others;
// a default's level left out keeps its default.
func TestHealthOverrides(t *testing.T) {
	t.Parallel()
	cfg, err := loadString(t, minimal+`
systems: {out: {type: nokeys}}
pipelines: [{name: p, from: public.t, to: out}]
health:
  hold: 30s
  pipeline:
    failing: {degraded: 1m}
  pipelines:
    p:
      backlog: {degraded: 5}
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.Health
	if h.Hold != 30*time.Second || h.Interval != 5*time.Second {
		t.Errorf("hold %s interval %s, want 30s and the default 5s", h.Hold, h.Interval)
	}
	if f := h.Pipeline.Failing; f.Degraded != time.Minute || f.Unhealthy != 5*time.Minute {
		t.Errorf("pipeline.failing %+v, want degraded 1m and the default unhealthy 5m", *f)
	}
	r := h.Pipelines["p"].Merged(h.Pipeline)
	if *r.Backlog != (Levels[int64]{Degraded: 5}) {
		t.Errorf("p's backlog %+v, want degraded 5, unhealthy off", *r.Backlog)
	}
	if r.Failing != h.Pipeline.Failing || r.ErrorRate != h.Pipeline.ErrorRate {
		t.Errorf("p's other rules are not the defaults")
	}
}

func TestHealthInvalid(t *testing.T) {
	t.Parallel()
	_, err := loadString(t, minimal+`
health:
  interval: 0s
  pipeline:
    backlog: {degraded: 10, unhealthy: 5}
    error_rate: {degraded: 5}
  pipelines:
    nope: {}
`, nil)
	if err == nil {
		t.Fatal("loaded")
	}
	for _, want := range []string{
		"health.interval: must be more than 0",
		"health.pipeline.backlog: unhealthy (5) is below degraded (10)",
		"health.pipeline.error_rate: a rate is between 0 and 1",
		`health.pipelines.nope: no pipeline is named "nope"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\nlacks %q", err, want)
		}
	}
}
