package daemon

import (
	"context"
	"errors"
	"testing"

	"github.com/rs/zerolog"

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
