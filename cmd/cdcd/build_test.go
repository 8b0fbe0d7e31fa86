package main

import (
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestBuildString(t *testing.T) {
	t.Parallel()
	vcs := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	for _, c := range []struct {
		name      string
		info      *debug.BuildInfo
		ldVersion string
		ldCommit  string
		want      string
	}{
		{"no build info", nil, "", "", "dev"},
		{"checkout build", vcs, "", "", "dev (commit 0123456789ab-dirty, 2026-12-01T10:00:00Z, go1.26.8)"},
		{"ldflags win", vcs, "1.4.0", "fedcba9876543210", "1.4.0 (commit fedcba987654, 2026-12-01T10:00:00Z, go1.26.8)"},
		{"go install of a tag", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}}, "", "", "v1.4.0 (go1.26.8)"},
	} {
		if got := buildOf(c.info, c.ldVersion, c.ldCommit).String(); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// Regression: log.format console wrote colour codes into files.
func TestConsoleLogsArePlainOffTerminal(t *testing.T) {
	t.Parallel()
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	log := zerolog.New(consoleWriter(f))
	log.Error().Str("k", "v").Msg("hello")
	out, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "hello") || strings.Contains(string(out), "\x1b[") {
		t.Fatalf("log line %q: want the message without escape codes", out)
	}
}
