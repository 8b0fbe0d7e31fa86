package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/daemon"
)

// Regression: the embedded default (no kafka, no pipelines: every change to
// standard output) registered the rate-limit collector twice and panicked
// at start.
func TestRunEmbeddedDefaultStartsAndStops(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", "CREATE TABLE contacts (id int PRIMARY KEY)")
	addr := freeAddr(t)
	yaml := fmt.Sprintf("postgres:\n  url: %q\n  tables: [contacts]\nhttp:\n  listen: %q\nlog:\n  level: warn\n", url, addr)
	ended := runDaemon(t, filepath.Join(t.TempDir(), "cdcd.yaml"), yaml)
	cdctest.Eventually(t, 30*time.Second, "cdcd to stream from the slot", func() bool {
		select {
		case <-ended:
			t.Fatal("run ended while starting")
		default:
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// Regression: when the pipelines could not be built (cdcd's state store
// unreachable), run panicked closing them instead of returning the error.
func TestRunReportsAnUnreachableStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cdcd.yaml")
	yaml := `postgres:
  url: "postgres://cdcd@127.0.0.1:1/app?connect_timeout=2"
  tables: [contacts]
systems:
  erp: {type: http, update: {method: PUT, url: "http://127.0.0.1:1/x"}}
pipelines:
  - {name: contacts-to-erp, from: contacts, to: erp}
log: {level: error}
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, cfg, daemon.RoleAll); err == nil {
		t.Fatal("run started without its state store")
	}
}

// freeAddr returns a loopback address with a port no one listens on, for
// cdcd's http.listen.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// runDaemon writes yaml to path and runs cdcd on it until the test ends,
// when it must stop cleanly within 30s. The channel it returns is closed
// if run ends before that.
func runDaemon(t *testing.T, path, yaml string) <-chan struct{} {
	t.Helper()
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	ended := make(chan struct{})
	go func() { runErr = run(ctx, cfg, daemon.RoleAll); close(ended) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-ended:
			if runErr != nil {
				t.Errorf("run = %v after a clean stop", runErr)
			}
		case <-time.After(30 * time.Second):
			t.Error("run did not stop within 30s")
		}
	})
	return ended
}
