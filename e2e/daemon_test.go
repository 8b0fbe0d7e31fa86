package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/e2e/e2etest"
)

// writeConfig writes a config streaming the database at pgURL to brokers
// and returns its path and the HTTP listen address.
func writeConfig(t *testing.T, pgURL string, brokers []string) (path, httpAddr string) {
	t.Helper()
	httpAddr = e2etest.FreeAddr(t)
	quoted := make([]string, len(brokers))
	for i, b := range brokers {
		quoted[i] = fmt.Sprintf("%q", b)
	}
	yaml := fmt.Sprintf(`postgres:
  url: %q
  status_interval: 100ms
  heartbeat: 1s
kafka:
  brokers: [%s]
http:
  listen: %q
`, pgURL, strings.Join(quoted, ", "), httpAddr)
	path = filepath.Join(t.TempDir(), "cdcd.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, httpAddr
}

// daemon is a `cdcd run` process with its HTTP listener address.
type daemon struct {
	*e2etest.Process
	httpAddr string
}

func startDaemon(t *testing.T, config, httpAddr string) *daemon {
	t.Helper()
	d := &daemon{Process: e2etest.NewProcess(t, "cdcd", cdcdBin, "run", "--config", config), httpAddr: httpAddr}
	d.Start()
	return d
}

func (d *daemon) start()                          { d.Start() }
func (d *daemon) kill()                           { d.Kill() }
func (d *daemon) waitReady(timeout time.Duration) { d.WaitReady(d.httpAddr, timeout) }
func (d *daemon) mustBeRunning(when string)       { d.MustRun(when) }
func (d *daemon) logContains(s string) bool       { return d.LogContains(s) }

// queryLSN runs a query returning one LSN (as text) on url.
func queryLSN(ctx context.Context, url, sql string) (cdc.LSN, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var s *string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		return 0, err
	}
	if s == nil {
		return 0, errors.New("no lsn")
	}
	return cdc.ParseLSN(*s)
}

// waitCaughtUp waits until the slot confirmed everything written to the
// database so far: confirmation means Kafka acknowledged it.
func waitCaughtUp(t *testing.T, url string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	target, err := queryLSN(ctx, url, "SELECT pg_current_wal_lsn()::text")
	if err != nil {
		t.Fatalf("current wal lsn: %v", err)
	}
	var confirmed cdc.LSN
	cdctest.Eventually(t, timeout, fmt.Sprintf("the slot to confirm %v", target), func() bool {
		confirmed, _ = queryLSN(ctx, url, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'cdcd'")
		return confirmed >= target
	})
}
