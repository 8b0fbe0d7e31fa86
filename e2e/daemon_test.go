package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// writeConfig writes a config streaming the database at pgURL to brokers
// and returns its path and the HTTP listen address.
func writeConfig(t *testing.T, pgURL string, brokers []string) (path, httpAddr string) {
	t.Helper()
	httpAddr = net.JoinHostPort("127.0.0.1", fmt.Sprint(freePort(t)))
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

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// daemon is a `cdcd run` process. Every process it starts appends its log
// to one file, whose tail is printed when the test fails.
type daemon struct {
	t        *testing.T
	config   string
	httpAddr string
	logPath  string

	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

func startDaemon(t *testing.T, config, httpAddr string) *daemon {
	t.Helper()
	d := &daemon{t: t, config: config, httpAddr: httpAddr, logPath: filepath.Join(t.TempDir(), "cdcd.log")}
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			d.printLogTail(60)
		}
	})
	d.start()
	return d
}

func (d *daemon) start() {
	d.t.Helper()
	log, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		d.t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(cdcdBin, "run", "--config", d.config)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("start cdcd: %v", err)
	}
	d.cmd, d.done = cmd, make(chan struct{})
	done := d.done
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
}

// running reports whether the process is still alive.
func (d *daemon) running() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (d *daemon) kill() {
	d.t.Helper()
	if !d.running() {
		d.t.Fatalf("cdcd exited on its own (%v) before it was killed", d.cmd.ProcessState)
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
}

// stop asks the process to stop with SIGTERM and kills it if it has not
// within 20s.
func (d *daemon) stop() {
	if d.cmd == nil || !d.running() {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.done
	}
}

// waitReady polls /readyz until cdcd streams from the slot.
func (d *daemon) waitReady(timeout time.Duration) {
	d.t.Helper()
	client := &http.Client{Timeout: time.Second}
	cdctest.Eventually(d.t, timeout, "cdcd to report ready", func() bool {
		if !d.running() {
			d.t.Fatalf("cdcd exited while starting: %v", d.cmd.ProcessState)
		}
		resp, err := client.Get("http://" + d.httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// mustBeRunning fails the test if the process has exited.
func (d *daemon) mustBeRunning(when string) {
	d.t.Helper()
	if !d.running() {
		d.t.Fatalf("cdcd exited %s: %v", when, d.cmd.ProcessState)
	}
}

func (d *daemon) printLogTail(n int) {
	data, err := os.ReadFile(d.logPath)
	if err != nil {
		return
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	lines = lines[max(0, len(lines)-n):]
	d.t.Logf("last %d lines of the cdcd log:\n%s", len(lines), bytes.Join(lines, []byte("\n")))
}

// logContains reports whether the processes logged s.
func (d *daemon) logContains(s string) bool {
	data, _ := os.ReadFile(d.logPath)
	return bytes.Contains(data, []byte(s))
}

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
