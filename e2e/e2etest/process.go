// Package e2etest runs the real cdcd binary for the end-to-end tests: it
// builds it once per test binary and starts, kills and stops its
// processes.
package e2etest

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// BuildCdcd builds cmd/cdcd into dir and returns the binary's path. Under
// go test -race, cdcd is built with the race detector, and a Process
// whose log reports a data race fails its test.
func BuildCdcd(dir string) (string, error) {
	bin := filepath.Join(dir, "cdcd")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "github.com/cdcd-dev/cdcd/cmd/cdcd")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	return bin, build.Run()
}

// FreeAddr returns a loopback host:port nothing listens on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// Process is a restartable `cdcd` process. Every run appends its output to
// one log file, whose tail is printed when the test fails; the process is
// stopped when the test ends.
type Process struct {
	t       testing.TB
	name    string
	bin     string
	args    []string
	logPath string

	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// NewProcess prepares bin with args; Start runs it.
func NewProcess(t testing.TB, name, bin string, args ...string) *Process {
	p := &Process{t: t, name: name, bin: bin, args: args, logPath: filepath.Join(t.TempDir(), name+".log")}
	t.Cleanup(func() {
		p.Stop()
		if r := p.raceReport(); r != "" {
			t.Errorf("%s reported a data race:\n%s", name, r)
		}
		if t.Failed() {
			p.PrintLogTail(60)
		}
	})
	return p
}

// dataRace is how the race detector starts a report.
const dataRace = "WARNING: DATA RACE"

// Start runs the process (again).
func (p *Process) Start() {
	p.t.Helper()
	log, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	done := p.done
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
}

// Running reports whether the process is alive.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// MustRun fails the test if the process has exited.
func (p *Process) MustRun(when string) {
	p.t.Helper()
	if !p.Running() {
		p.t.Fatalf("%s exited %s: %v", p.name, when, p.cmd.ProcessState)
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Process) Kill() {
	p.t.Helper()
	p.MustRun("before it was killed")
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop asks the process to stop with SIGTERM and kills it if it has not
// within 20s.
func (p *Process) Stop() {
	if p.cmd == nil || !p.Running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// Terminate sends SIGTERM and waits up to limit for the process to exit.
// It returns how long the exit took and the exit code; ok is false, and
// the process killed, when it was still running at limit.
func (p *Process) Terminate(limit time.Duration) (took time.Duration, code int, ok bool) {
	p.t.Helper()
	p.MustRun("before it was asked to stop")
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return time.Since(start), p.cmd.ProcessState.ExitCode(), true
	case <-time.After(limit):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		return time.Since(start), -1, false
	}
}

// WaitReady polls http://addr/readyz until it answers 200, failing the
// test if the process exits first.
func (p *Process) WaitReady(addr string, timeout time.Duration) {
	p.t.Helper()
	client := &http.Client{Timeout: time.Second}
	cdctest.Eventually(p.t, timeout, p.name+" to report ready", func() bool {
		p.MustRun("while starting")
		resp, err := client.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// LogContains reports whether the process's runs logged s.
func (p *Process) LogContains(s string) bool {
	data, _ := os.ReadFile(p.logPath)
	return bytes.Contains(data, []byte(s))
}

// raceReport is the race detector's first report in the log, if any.
func (p *Process) raceReport() string {
	data, _ := os.ReadFile(p.logPath)
	i := bytes.Index(data, []byte(dataRace))
	if i < 0 {
		return ""
	}
	report := data[i:]
	if j := bytes.Index(report, []byte("\n==================")); j >= 0 {
		report = report[:j]
	}
	return string(report)
}

// PrintLogTail logs the last n lines of the process's log.
func (p *Process) PrintLogTail(n int) {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	lines = lines[max(0, len(lines)-n):]
	p.t.Logf("last %d lines of the %s log:\n%s", len(lines), p.name, bytes.Join(lines, []byte("\n")))
}
