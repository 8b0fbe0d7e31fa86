package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
)

// The split roles need Kafka: without it New refuses them as a config
// error (exit status 2) before it opens anything.
func TestNewRefusesSplitRolesWithoutKafka(t *testing.T) {
	cfg := &config.Config{Postgres: config.Postgres{URL: "postgres://nowhere.invalid/app"}}
	for _, r := range []Role{RoleCapture, RoleSinks} {
		_, err := New(context.Background(), cfg, Options{Role: r, Log: zerolog.New(zerolog.NewTestWriter(t))})
		var ce *ConfigError
		if !errors.As(err, &ce) || err.Error() != "--role "+r.String()+" needs a kafka: section; the in-process bus runs capture and sinks in one process" {
			t.Errorf("role %s: New = %v, want the config error", r, err)
		}
	}
}

func TestParseRole(t *testing.T) {
	for s, want := range map[string]Role{"": RoleAll, "all": RoleAll, "capture": RoleCapture, "sinks": RoleSinks} {
		if r, err := ParseRole(s); err != nil || r != want {
			t.Errorf("ParseRole(%q) = %v, %v; want %v", s, r, err, want)
		}
	}
	var ce *ConfigError
	if _, err := ParseRole("writer"); !errors.As(err, &ce) {
		t.Errorf("ParseRole(writer) = %v, want a config error", err)
	}
}

// batch.linger: 0 sends at once, as docs/config.md says; it was taken
// for the bus's 5 ms default.
func TestKafkaLingerZeroSendsAtOnce(t *testing.T) {
	for _, tt := range []struct {
		yaml string
		want time.Duration
	}{
		{"kafka: {brokers: [\"k:9092\"]}\n", 5 * time.Millisecond},
		{"kafka: {brokers: [\"k:9092\"], batch: {linger: 0}}\n", time.Microsecond},
		{"kafka: {brokers: [\"k:9092\"], batch: {linger: 20ms}}\n", 20 * time.Millisecond},
	} {
		path := filepath.Join(t.TempDir(), "cdcd.yaml")
		if err := os.WriteFile(path, []byte("postgres: {url: postgres://x/y, tables: [t]}\n"+tt.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path, Components())
		if err != nil {
			t.Fatal(err)
		}
		if got := kafkaConfig(cfg, cdc.SourceInfo{}).Linger; got != tt.want {
			t.Errorf("%s: linger %v, want %v", strings.TrimSpace(tt.yaml), got, tt.want)
		}
	}
}
