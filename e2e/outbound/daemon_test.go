package outbound

import (
	"bytes"
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

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

const (
	pipelineName = "contacts-to-hubspot"
	hubToken     = "pat-outbound"
	// hubRate is the double's rolling limit per second, and the writer's.
	hubRate = 50
)

// deployment is one test's cdcd setup: its database (also the name of its
// replication slot), the HubSpot double the pipeline writes to, and Kafka
// when the bus is Kafka.
type deployment struct {
	t       *testing.T
	name    string
	url     string
	hub     *hubspot.Server
	vendor  string         // the writer's base_url: the double's, or a proxy's in front of it
	kafka   *cdctest.Kafka // nil: the in-process bus
	timeout time.Duration  // the writer's request timeout
}

// newDeployment creates the test's database with the contacts table and
// starts the double with opts (token and rate limit set here, and a seed,
// logged, when opts has none).
func newDeployment(t *testing.T, kafka bool, opts hubspot.Options) *deployment {
	t.Helper()
	needsServers(t)
	d := &deployment{t: t, name: dbName(t), timeout: time.Second}
	d.url = pg.CreateDB(t, d.name)
	t.Cleanup(func() {
		_ = pg.ExecErr("postgres", fmt.Sprintf("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '%s'", d.name))
	})
	createContacts(t, d.url)
	opts.Tokens = []string{hubToken}
	opts.Limit, opts.Window = hubRate, time.Second
	if opts.Seed == 0 {
		opts.Seed = uint64(time.Now().UnixNano())
		t.Logf("double seed %d", opts.Seed)
	}
	d.hub = hubspot.New(opts)
	t.Cleanup(d.hub.Close)
	d.vendor = d.hub.URL()
	if kafka {
		d.kafka = cdctest.StartKafka(t)
	}
	return d
}

// config writes a config file whose HTTP listener is on a free port and
// returns its path and that address.
func (d *deployment) config() (path, listen string) {
	d.t.Helper()
	listen = net.JoinHostPort("127.0.0.1", fmt.Sprint(freePort(d.t)))
	var b strings.Builder
	fmt.Fprintf(&b, `postgres:
  url: %q
  slot: %s
  publication: %s
  tables: [public.contacts]
  status_interval: 100ms
  heartbeat: 1s
http:
  listen: %q
systems:
  hubspot:
    type: hubspot
    base_url: %q
    token: %q
    object: contacts
    id_property: email
    rate: {requests: %d, per: 1s}
    timeout: %s
pipelines:
  - name: %s
    from: public.contacts
    to: hubspot
    object: contacts
    map:
      email: email
      firstname: first_name
      lastname: last_name
      phone: phone
      rev: rev
      lifecyclestage: stage
    max_attempts: 20
    backoff: {min: 50ms, max: 1s}
`, d.url, d.name, d.name, listen, d.vendor, hubToken, hubRate, d.timeout, pipelineName)
	if d.kafka != nil {
		quoted := make([]string, 0, len(d.kafka.Brokers()))
		for _, br := range d.kafka.Brokers() {
			quoted = append(quoted, fmt.Sprintf("%q", br))
		}
		fmt.Fprintf(&b, "kafka:\n  brokers: [%s]\n  topics: {partitions: 3}\n", strings.Join(quoted, ", "))
	}
	path = filepath.Join(d.t.TempDir(), "cdcd.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		d.t.Fatal(err)
	}
	return path, listen
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

// cli runs a cdcd command with the deployment's config and returns its
// standard output; a non-zero exit fails the test.
func (d *deployment) cli(args ...string) string {
	d.t.Helper()
	path, _ := d.config()
	var out, errOut bytes.Buffer
	cmd := exec.Command(cdcdBin, append(args, "--config", path)...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		d.t.Fatalf("cdcd %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// proc is one `cdcd run --role R` process, restartable. Its log is kept in
// a file whose tail is printed when the test fails.
type proc struct {
	t       *testing.T
	role    string
	config  string
	listen  string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has exited
}

// start runs cdcd with role and waits until it is ready; a capture role
// is ready once it streams from the slot.
func (d *deployment) start(role string) *proc {
	d.t.Helper()
	path, listen := d.config()
	p := &proc{t: d.t, role: role, config: path, listen: listen,
		logPath: filepath.Join(d.t.TempDir(), "cdcd-"+role+".log")}
	d.t.Cleanup(func() {
		p.stop()
		if d.t.Failed() {
			p.printLogTail(40)
		}
	})
	p.restart()
	return p
}

// restart starts the process (again) and waits until it is ready.
func (p *proc) restart() {
	p.t.Helper()
	log, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(cdcdBin, "run", "--config", p.config, "--role", p.role)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start cdcd --role %s: %v", p.role, err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	done := p.done
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	client := &http.Client{Timeout: time.Second}
	cdctest.Eventually(p.t, 30*time.Second, "cdcd --role "+p.role+" to report ready", func() bool {
		p.mustRun("while starting")
		resp, err := client.Get("http://" + p.listen + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// mustRun fails the test if the process has exited.
func (p *proc) mustRun(when string) {
	p.t.Helper()
	if !p.running() {
		p.t.Fatalf("cdcd --role %s exited %s: %v", p.role, when, p.cmd.ProcessState)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.t.Helper()
	p.mustRun("before it was killed")
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop asks the process to stop with SIGTERM, and kills it if it has not
// within 20s.
func (p *proc) stop() {
	if p.cmd == nil || !p.running() {
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

func (p *proc) printLogTail(n int) {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	lines = lines[max(0, len(lines)-n):]
	p.t.Logf("last %d lines of the cdcd --role %s log:\n%s", len(lines), p.role, bytes.Join(lines, []byte("\n")))
}
