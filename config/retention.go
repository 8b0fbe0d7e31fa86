package config

import (
	"cmp"
	"fmt"
	"time"
)

// Retention is how long cdcd keeps the rows of its tables that record
// the past. Each kind is pruned every PruneEvery of its window.
type Retention struct {
	// Audit is how long delivery outcomes (cdcd.sync_events) and dead
	// letters once replayed or discarded are kept; 0 keeps them forever.
	// audit.retention is its older name.
	Audit time.Duration `yaml:"audit"`
	// Health is how long health transitions are kept (each subject's
	// latest always); 0 keeps them forever. health.retention is its older
	// name.
	Health time.Duration `yaml:"health"`
	// WebhookDeliveries is how long a webhook delivery id is remembered,
	// so that a vendor's retry of it is dropped.
	WebhookDeliveries time.Duration `yaml:"webhook_deliveries"`
	// DeletedLinks is how long the link of a record whose delete was
	// delivered is kept: its position makes a change re-sent after a
	// crash, older than the delete, be skipped rather than create the
	// record anew.
	DeletedLinks time.Duration `yaml:"deleted_links"`
	// RecentWrites is how long a value cdcd wrote to a system is
	// remembered, so that a webhook reporting it back is known as an echo;
	// at most MaxRecentWrites, the window in which echoes are looked for.
	RecentWrites time.Duration `yaml:"recent_writes"`
	// Conflicts is how long a resolved conflict (the audit of its
	// decision) is kept after its resolution; 0 keeps them forever. An
	// open conflict is kept however old.
	Conflicts time.Duration `yaml:"conflicts"`
	// Jobs is how long a finished job (done, failed or cancelled) and its
	// failed records are kept after it finished; 0 keeps them forever.
	// The latest job of each kind, pipeline and requester is kept, so a
	// pipeline's initial snapshot is never taken again.
	Jobs time.Duration `yaml:"jobs"`

	// auditKey and healthKey are the keys Audit and Health were given by,
	// for the problems found in them; empty is the retention section's.
	auditKey, healthKey string
}

// MaxRecentWrites is the longest Retention.RecentWrites: a write older
// than it is never read back as an echo (store.RecentWindow).
const MaxRecentWrites = 15 * time.Minute

// DefaultRetention holds the retention section's defaults.
func DefaultRetention() Retention {
	return Retention{
		Audit:             30 * 24 * time.Hour,
		Health:            30 * 24 * time.Hour,
		WebhookDeliveries: 7 * 24 * time.Hour,
		DeletedLinks:      7 * 24 * time.Hour,
		RecentWrites:      MaxRecentWrites,
		Conflicts:         90 * 24 * time.Hour,
		Jobs:              90 * 24 * time.Hour,
	}
}

// PruneEvery is how often rows kept for window are pruned: a tenth of
// the window, at least a second and at most an hour, so that a row
// outlives its window by little and a short window is kept as well as a
// long one.
func PruneEvery(window time.Duration) time.Duration {
	return min(max(window/10, time.Second), time.Hour)
}

// resolveRetention makes the older keys audit.retention and
// health.retention and their retention section's keys one setting: the
// one given (both given is a problem), else the default.
func (c *Config) resolveRetention(given func(path string) bool, v *problems) {
	for _, k := range []struct {
		old, key string
		oldV     *time.Duration
		v        *time.Duration
		givenBy  *string
	}{
		{"audit.retention", "retention.audit", &c.Audit.Retention, &c.Retention.Audit, &c.Retention.auditKey},
		{"health.retention", "retention.health", &c.Health.Retention, &c.Retention.Health, &c.Retention.healthKey},
	} {
		switch {
		case given(k.old) && given(k.key):
			v.add(k.old, fmt.Sprintf("%s is the older name of %s, which is given too; keep %s only", k.old, k.key, k.key))
		case given(k.old):
			*k.v = *k.oldV
			*k.givenBy = k.old
		default:
			*k.oldV = *k.v
		}
	}
}

func (r *Retention) validate(v *problems) {
	for _, k := range []struct {
		key     string
		v       time.Duration
		forever bool
	}{
		{cmp.Or(r.auditKey, "retention.audit"), r.Audit, true},
		{cmp.Or(r.healthKey, "retention.health"), r.Health, true},
		{"retention.webhook_deliveries", r.WebhookDeliveries, false},
		{"retention.deleted_links", r.DeletedLinks, false},
		{"retention.recent_writes", r.RecentWrites, false},
		{"retention.conflicts", r.Conflicts, true},
		{"retention.jobs", r.Jobs, true},
	} {
		switch {
		case k.forever && k.v == 0:
		case k.v < time.Second && k.forever:
			v.add(k.key, fmt.Sprintf("%s must be at least 1s (0 keeps the rows forever)", k.v))
		case k.v < time.Second:
			v.add(k.key, fmt.Sprintf("%s must be at least 1s", k.v))
		}
	}
	if r.RecentWrites > MaxRecentWrites {
		v.add("retention.recent_writes", fmt.Sprintf("%s is more than %s, the longest a write is looked for as an echo", r.RecentWrites, MaxRecentWrites))
	}
}
