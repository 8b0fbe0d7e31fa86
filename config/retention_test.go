package config

import (
	"strings"
	"testing"
	"time"
)

func TestRetention(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want Retention
	}{
		{"defaults", "", Retention{Audit: 720 * time.Hour, Health: 720 * time.Hour, WebhookDeliveries: 168 * time.Hour, DeletedLinks: 168 * time.Hour, RecentWrites: 15 * time.Minute, Conflicts: 2160 * time.Hour, Jobs: 2160 * time.Hour}},
		{"section", "retention: {audit: 1h, health: 2h, webhook_deliveries: 3m, deleted_links: 5m, recent_writes: 4s, conflicts: 6h, jobs: 7h}\n",
			Retention{Audit: time.Hour, Health: 2 * time.Hour, WebhookDeliveries: 3 * time.Minute, DeletedLinks: 5 * time.Minute, RecentWrites: 4 * time.Second, Conflicts: 6 * time.Hour, Jobs: 7 * time.Hour}},
		{"older keys", "audit: {retention: 5h}\nhealth: {retention: 0s}\nretention: {recent_writes: 1m}\n",
			Retention{Audit: 5 * time.Hour, Health: 0, WebhookDeliveries: 168 * time.Hour, DeletedLinks: 168 * time.Hour, RecentWrites: time.Minute, Conflicts: 2160 * time.Hour, Jobs: 2160 * time.Hour, auditKey: "audit.retention", healthKey: "health.retention"}},
		{"forever", "retention: {audit: 0s, health: 0s, conflicts: 0s, jobs: 0s}\n",
			Retention{Audit: 0, Health: 0, WebhookDeliveries: 168 * time.Hour, DeletedLinks: 168 * time.Hour, RecentWrites: 15 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := loadString(t, minimal+tt.src, nil)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Retention != tt.want {
				t.Errorf("retention %+v, want %+v", cfg.Retention, tt.want)
			}
			// The older keys hold the same setting, for their readers.
			if cfg.Audit.Retention != tt.want.Audit || cfg.Health.Retention != tt.want.Health {
				t.Errorf("audit.retention %s, health.retention %s; want %s, %s", cfg.Audit.Retention, cfg.Health.Retention, tt.want.Audit, tt.want.Health)
			}
		})
	}
}

func TestRetentionInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src, want string
	}{
		{"too short", "retention:\n  webhook_deliveries: 0s\n  recent_writes: 500ms\n  audit: -1h\n  deleted_links: 0s\n",
			"cdcd.yaml:3:3: retention.webhook_deliveries: 0s must be at least 1s\n" +
				"cdcd.yaml:4:3: retention.recent_writes: 500ms must be at least 1s\n" +
				"cdcd.yaml:5:3: retention.audit: -1h0m0s must be at least 1s (0 keeps the rows forever)\n" +
				"cdcd.yaml:6:3: retention.deleted_links: 0s must be at least 1s"},
		{"conflicts and jobs", "retention: {conflicts: 100ms, jobs: -1s}\n",
			"cdcd.yaml:2:13: retention.conflicts: 100ms must be at least 1s (0 keeps the rows forever)\n" +
				"cdcd.yaml:2:31: retention.jobs: -1s must be at least 1s (0 keeps the rows forever)"},
		{"recent writes past the echo window", "retention: {recent_writes: 16m}\n",
			"cdcd.yaml:2:13: retention.recent_writes: 16m0s is more than 15m0s, the longest a write is looked for as an echo"},
		{"older key is named", "audit:\n  retention: 10ms\n",
			"cdcd.yaml:3:3: audit.retention: 10ms must be at least 1s (0 keeps the rows forever)"},
		{"both names", "health: {retention: 1h}\nretention: {health: 2h}\n",
			"cdcd.yaml:2:10: health.retention: health.retention is the older name of retention.health, which is given too; keep retention.health only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadString(t, minimal+tt.src, nil)
			if err == nil {
				t.Fatal("loaded")
			}
			if got := strings.TrimSpace(err.Error()); got != tt.want {
				t.Errorf("errors\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestPruneEvery(t *testing.T) {
	t.Parallel()
	for window, want := range map[time.Duration]time.Duration{
		time.Second:            time.Second,
		30 * time.Second:       3 * time.Second,
		15 * time.Minute:       90 * time.Second,
		720 * time.Hour:        time.Hour,
		5 * time.Hour:          30 * time.Minute,
		500 * time.Millisecond: time.Second,
	} {
		if got := PruneEvery(window); got != want {
			t.Errorf("PruneEvery(%s) = %s, want %s", window, got, want)
		}
	}
}
