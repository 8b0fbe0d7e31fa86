package deploy

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/e2e/e2etest"
)

// TestComposeStackDelivers runs what compose.yaml runs, without Docker: its
// config and command lines, against a Postgres loaded with the schema it
// loads and an in-process Kafka. A second capture process stands by (not
// ready, as the Helm chart expects), and a row inserted reaches one of the
// two sink workers' standard output.
func TestComposeStackDelivers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Postgres, Kafka and four cdcd processes")
	}
	bin := cdcdBinary(t)
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	schema, err := os.ReadFile("examples/schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "app", string(schema))
	kafka := cdctest.StartKafka(t)
	t.Setenv("DATABASE_URL", url)
	t.Setenv("KAFKA_BROKER", kafka.Brokers()[0])

	var file struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := readYAML(filepath.Join(composeDir, "compose.yaml"), &file); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join(composeDir, "cdcd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Each process on this one host gets its own listener.
	start := func(name, service string) (*e2etest.Process, string) {
		t.Helper()
		addr := e2etest.FreeAddr(t)
		cfg := strings.Replace(string(text), "listen: :8080", "listen: "+addr, 1)
		if cfg == string(text) {
			t.Fatal("compose/cdcd.yaml no longer says listen: :8080")
		}
		path := filepath.Join(t.TempDir(), "cdcd.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		args := file.Services[service].Command
		inv := checkArgs(t, service, args)
		args = append([]string(nil), args...)
		for i := range args {
			if args[i] == inv.config {
				args[i] = path
			}
		}
		p := e2etest.NewProcess(t, name, bin, args...)
		p.Start()
		return p, addr
	}

	capture, captureAddr := start("capture", "capture")
	capture.WaitReady(captureAddr, 60*time.Second)
	standby, standbyAddr := start("standby", "capture")
	var sinks []*e2etest.Process
	for _, name := range []string{"sinks-1", "sinks-2"} {
		p, addr := start(name, "sinks")
		p.WaitReady(addr, 60*time.Second)
		sinks = append(sinks, p)
	}

	status := func(addr, path string) int {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	cdctest.Eventually(t, 30*time.Second, "the standby to serve /healthz", func() bool {
		standby.MustRun("standing by")
		return status(standbyAddr, "/healthz") == http.StatusOK
	})
	if got := status(standbyAddr, "/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("standby /readyz: %d while the first capture streams, want 503", got)
	}

	pg.Exec(t, "app", `INSERT INTO contacts (email, first_name, password_hash) VALUES ('ada@example.com', 'Ada', 'secret-hash')`)
	pg.Exec(t, "app", `INSERT INTO customers (id, email) VALUES (7, 'ada@example.com');
INSERT INTO orders (id, order_number, customer_id, status) VALUES (42, 'SO-1042', 7, 'confirmed')`)
	for _, want := range []string{`"email":"ada@example.com"`, `"order_number":"SO-1042"`} {
		cdctest.Eventually(t, 60*time.Second, want+" on a sink worker's standard output", func() bool {
			for _, p := range sinks {
				p.MustRun("delivering")
				if p.LogContains(want) {
					return true
				}
			}
			return false
		})
	}
	for _, p := range sinks {
		if p.LogContains("secret-hash") {
			t.Error("a sink worker printed a denied column")
		}
	}
}
