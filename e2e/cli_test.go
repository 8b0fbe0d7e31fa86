package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// runCLI runs the cdcd binary to completion and returns its exit code and
// output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, cdcdBin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && ctx.Err() == nil:
		code = exit.ExitCode()
	default:
		t.Fatalf("cdcd %s: %v", strings.Join(args, " "), err)
	}
	return code, out.String(), errOut.String()
}

func TestCLI(t *testing.T) {
	needsServers(t)
	t.Parallel()

	t.Run("version", func(t *testing.T) {
		code, out, _ := runCLI(t, "version")
		if code != 0 || !strings.HasPrefix(out, "cdcd ") {
			t.Errorf("cdcd version: exit %d, output %q; want 0 and \"cdcd <version>\"", code, out)
		}
	})

	t.Run("unknown flag", func(t *testing.T) {
		code, _, errOut := runCLI(t, "run", "--no-such-flag")
		if code != 2 || !strings.Contains(errOut, "no-such-flag") {
			t.Errorf("cdcd run --no-such-flag: exit %d, stderr %q; want 2 naming the flag", code, errOut)
		}
	})

	t.Run("validate reports every problem with file:line:key", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bad.yaml")
		config := `postgres:
  url: "postgres://localhost/app"
  slot: "Bad-Slot"
  status_interval: 30s
kafka:
  brokers: [localhost]
  compression: lz5
log:
  levle: debug
`
		if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := runCLI(t, "validate", "--config", path)
		if code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
		for _, p := range []struct {
			line int
			key  string
		}{
			{3, "postgres.slot"},
			{4, "postgres.status_interval"},
			{6, "kafka.brokers[0]"},
			{7, "kafka.compression"},
			{9, "log.levle"},
		} {
			re := regexp.MustCompile(`(?m)` + regexp.QuoteMeta(fmt.Sprintf("%s:%d:", path, p.line)) + `\d+: ` + regexp.QuoteMeta(p.key) + `: \S`)
			if !re.MatchString(errOut) {
				t.Errorf("no problem reported as %s:%d:<col>: %s: ...", filepath.Base(path), p.line, p.key)
			}
		}
		if t.Failed() {
			t.Logf("stderr:\n%s", errOut)
		}
	})

	t.Run("run refuses wal_level=replica", func(t *testing.T) {
		t.Parallel()
		pg := cdctest.StartPostgres(t, "wal_level = replica")
		url := pg.CreateDB(t, "app")
		kafka := cdctest.StartKafka(t)
		config, _ := writeConfig(t, url, kafka.Brokers())
		code, _, errOut := runCLI(t, "run", "--config", config)
		want := `wal_level is "replica"; set wal_level=logical`
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("exit %d, want 1 with %q; stderr:\n%s", code, want, errOut)
		}
	})
}
