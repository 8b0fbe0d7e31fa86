package config

import (
	"fmt"
	"time"
)

// Health configures cdcd's health rules: what makes a pipeline, a system
// or the capture degraded or unhealthy, and how the states are kept.
type Health struct {
	// Interval is how often the rules are evaluated.
	Interval time.Duration `yaml:"interval"`
	// Hold is how long a new state must last before it is reported, so
	// that a state does not flap.
	Hold time.Duration `yaml:"hold"`
	// Remind moves a lasting degraded or unhealthy transition's
	// notified_at every Remind, so that alert pipelines remind; 0 never.
	Remind time.Duration `yaml:"remind"`
	// Progress is how often a progress line per pipeline is logged; 0 never.
	Progress time.Duration `yaml:"progress"`
	// Retention is how long transitions are kept; 0 keeps them forever.
	// Load makes it Config.Retention.Health, its newer name.
	Retention time.Duration `yaml:"retention"`
	Capture   CaptureRules  `yaml:"capture"`
	Webhooks  WebhookRules  `yaml:"webhooks"`
	Jobs      JobRules      `yaml:"jobs"`
	// Pipeline are the rules of every pipeline; Pipelines override them by
	// pipeline name, rule by rule.
	Pipeline  PipelineRules             `yaml:"pipeline"`
	Pipelines map[string]*PipelineRules `yaml:"pipelines"`
}

// Levels are the thresholds of one rule: at or above Degraded the subject
// is degraded, at or above Unhealthy unhealthy. Zero turns a level off.
type Levels[T int64 | float64 | time.Duration] struct {
	Degraded  T `yaml:"degraded"`
	Unhealthy T `yaml:"unhealthy"`
}

// CaptureRules judge the reading of the replication slot.
type CaptureRules struct {
	// LagBytes is the WAL between the server's position and cdcd's
	// confirmed one.
	LagBytes *Levels[int64] `yaml:"lag_bytes"`
	// LagSeconds is how long the confirmed position has stayed behind the
	// server's without moving.
	LagSeconds *Levels[time.Duration] `yaml:"lag_seconds"`
}

// WebhookRules judge each system's webhook intake.
type WebhookRules struct {
	// Refusals are deliveries answered with a 4xx or 5xx in the last hour.
	Refusals *Levels[int64] `yaml:"refusals"`
}

// JobRules judge cdcd's jobs.
type JobRules struct {
	// Failed are jobs that ended in failure in the last day.
	Failed *Levels[int64] `yaml:"failed"`
}

// ErrorRate is the share of failed writes in the last hour; it counts only
// once a pipeline made MinAttempts writes in that hour.
type ErrorRate struct {
	Levels[float64] `yaml:",inline"`
	MinAttempts     int64 `yaml:"min_attempts"`
}

// PipelineRules judge one pipeline. A nil rule, in an override, is the
// default's.
type PipelineRules struct {
	// Failing is how long the system has answered nothing but errors.
	Failing *Levels[time.Duration] `yaml:"failing"`
	// ErrorRate is the share of failed writes in the last hour.
	ErrorRate *ErrorRate `yaml:"error_rate"`
	// Stalled is how long records have waited with none delivered.
	Stalled *Levels[time.Duration] `yaml:"stalled"`
	// OldestUndelivered is the age (since its commit) of the oldest change
	// a delivery pipeline has not delivered or dead-lettered yet.
	OldestUndelivered *Levels[time.Duration] `yaml:"oldest_undelivered"`
	// Backlog is the records waiting to be delivered.
	Backlog *Levels[int64] `yaml:"backlog"`
	// DeadLetters are the pipeline's dead letters not replayed or
	// discarded.
	DeadLetters *Levels[int64] `yaml:"dead_letters"`
	// ConflictsOpen are its conflicts pending or escalated;
	// ConflictsEscalated those escalated to a person.
	ConflictsOpen      *Levels[int64] `yaml:"conflicts_open"`
	ConflictsEscalated *Levels[int64] `yaml:"conflicts_escalated"`
}

// Merged returns the rules of r with every nil rule taken from def.
func (r *PipelineRules) Merged(def PipelineRules) PipelineRules {
	if r == nil {
		return def
	}
	out := *r
	pick(&out.Failing, def.Failing)
	pick(&out.ErrorRate, def.ErrorRate)
	pick(&out.Stalled, def.Stalled)
	pick(&out.OldestUndelivered, def.OldestUndelivered)
	pick(&out.Backlog, def.Backlog)
	pick(&out.DeadLetters, def.DeadLetters)
	pick(&out.ConflictsOpen, def.ConflictsOpen)
	pick(&out.ConflictsEscalated, def.ConflictsEscalated)
	return out
}

func pick[T any](p **T, def *T) {
	if *p == nil {
		*p = def
	}
}

// DefaultHealth holds the health section's defaults.
func DefaultHealth() Health {
	return Health{
		Interval:  5 * time.Second,
		Hold:      10 * time.Second,
		Remind:    time.Hour,
		Progress:  time.Minute,
		Retention: 30 * 24 * time.Hour,
		Capture: CaptureRules{
			LagBytes:   &Levels[int64]{Degraded: 256 << 20, Unhealthy: 1 << 30},
			LagSeconds: &Levels[time.Duration]{Degraded: 5 * time.Minute, Unhealthy: 30 * time.Minute},
		},
		Webhooks: WebhookRules{Refusals: &Levels[int64]{Degraded: 10}},
		Jobs:     JobRules{Failed: &Levels[int64]{Degraded: 1}},
		Pipeline: PipelineRules{
			Failing:            &Levels[time.Duration]{Degraded: 10 * time.Second, Unhealthy: 5 * time.Minute},
			ErrorRate:          &ErrorRate{Levels: Levels[float64]{Degraded: 0.05}, MinAttempts: 20},
			Stalled:            &Levels[time.Duration]{Degraded: 5 * time.Minute, Unhealthy: 30 * time.Minute},
			OldestUndelivered:  &Levels[time.Duration]{Degraded: 15 * time.Minute, Unhealthy: time.Hour},
			Backlog:            &Levels[int64]{Degraded: 1000, Unhealthy: 100_000},
			DeadLetters:        &Levels[int64]{Degraded: 1},
			ConflictsOpen:      &Levels[int64]{Degraded: 100},
			ConflictsEscalated: &Levels[int64]{Degraded: 1},
		},
	}
}

func (h *Health) validate(v *problems, pipelines []*Pipeline) {
	if h.Interval <= 0 {
		v.add("health.interval", "must be more than 0")
	}
	for key, d := range map[string]time.Duration{"health.hold": h.Hold, "health.remind": h.Remind, "health.progress": h.Progress} {
		if d < 0 {
			v.add(key, "must not be negative (0 turns it off)")
		}
	}
	levels(v, "health.capture.lag_bytes", h.Capture.LagBytes)
	levels(v, "health.capture.lag_seconds", h.Capture.LagSeconds)
	levels(v, "health.webhooks.refusals", h.Webhooks.Refusals)
	levels(v, "health.jobs.failed", h.Jobs.Failed)
	h.Pipeline.validate(v, "health.pipeline")
	names := map[string]bool{}
	for _, p := range pipelines {
		names[p.Name] = true
	}
	for name, r := range h.Pipelines {
		path := "health.pipelines." + name
		if !names[name] {
			v.add(path, fmt.Sprintf("no pipeline is named %q", name))
		}
		if r != nil {
			r.validate(v, path)
		}
	}
}

func (r *PipelineRules) validate(v *problems, path string) {
	levels(v, path+".failing", r.Failing)
	levels(v, path+".stalled", r.Stalled)
	levels(v, path+".oldest_undelivered", r.OldestUndelivered)
	levels(v, path+".backlog", r.Backlog)
	levels(v, path+".dead_letters", r.DeadLetters)
	levels(v, path+".conflicts_open", r.ConflictsOpen)
	levels(v, path+".conflicts_escalated", r.ConflictsEscalated)
	if e := r.ErrorRate; e != nil {
		if e.Degraded > 1 || e.Unhealthy > 1 {
			v.add(path+".error_rate", "a rate is between 0 and 1 (0.05 is 5%)")
		} else {
			levels(v, path+".error_rate", &e.Levels)
		}
		if e.MinAttempts < 0 {
			v.add(path+".error_rate.min_attempts", "must not be negative")
		}
	}
}

func levels[T int64 | float64 | time.Duration](v *problems, path string, l *Levels[T]) {
	if l == nil {
		return
	}
	if l.Degraded < 0 || l.Unhealthy < 0 {
		v.add(path, "levels must not be negative (0 turns a level off)")
	}
	if l.Degraded > 0 && l.Unhealthy > 0 && l.Unhealthy < l.Degraded {
		v.add(path, fmt.Sprintf("unhealthy (%v) is below degraded (%v)", l.Unhealthy, l.Degraded))
	}
}
