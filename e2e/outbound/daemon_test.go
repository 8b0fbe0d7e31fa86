package outbound

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/e2e/e2etest"

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
	// idProperty is the writer's id_property: "email" (upserts) unless a
	// test clears it to have records created.
	idProperty string
	// attempts is the pipeline's max_attempts.
	attempts int
}

// newDeployment creates the test's database with the contacts table and
// starts the double with opts (token and rate limit set here, and a seed,
// logged, when opts has none).
func newDeployment(t *testing.T, kafka bool, opts hubspot.Options) *deployment {
	t.Helper()
	needsServers(t)
	return newDeploymentOn(t, pg, kafka, opts)
}

// newDeploymentOn is newDeployment on server instead of the shared one.
func newDeploymentOn(t *testing.T, server *cdctest.Postgres, kafka bool, opts hubspot.Options) *deployment {
	t.Helper()
	d := &deployment{t: t, name: dbName(t), timeout: time.Second, idProperty: "email", attempts: 20}
	d.url = server.CreateDB(t, d.name)
	t.Cleanup(func() {
		_ = server.ExecErr("postgres", fmt.Sprintf("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '%s'", d.name))
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
	listen = e2etest.FreeAddr(d.t)
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
jobs: {lease: 3s, chunk_size: 200}
systems:
  hubspot:
    type: hubspot
    base_url: %q
    token: %q
    object: contacts
    id_property: %q
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
    max_attempts: %d
    backoff: {min: 50ms, max: 1s}
`, d.url, d.name, d.name, listen, d.vendor, hubToken, d.idProperty, hubRate, d.timeout, pipelineName, d.attempts)
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

// proc is one `cdcd run --role R` process, restartable.
type proc struct {
	*e2etest.Process
	role   string
	listen string
}

// start runs cdcd with role and waits until it is ready; a capture role
// is ready once it streams from the slot.
func (d *deployment) start(role string) *proc {
	d.t.Helper()
	path, listen := d.config()
	p := &proc{
		Process: e2etest.NewProcess(d.t, "cdcd --role "+role, cdcdBin, "run", "--config", path, "--role", role),
		role:    role, listen: listen,
	}
	p.restart()
	return p
}

// restart starts the process (again) and waits until it is ready.
func (p *proc) restart() {
	p.Start()
	p.WaitReady(p.listen, 30*time.Second)
}

func (p *proc) kill() { p.Kill() }
