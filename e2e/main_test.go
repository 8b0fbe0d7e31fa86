package e2e

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/cdcd-dev/cdcd/e2e/e2etest"
)

// cdcdBin is the cdcd binary built for this test run.
var cdcdBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every test skips itself
	}
	dir, err := os.MkdirTemp("", "cdcd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	if cdcdBin, err = e2etest.BuildCdcd(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build cdcd:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needsServers skips t under -short: every test here starts Postgres, Kafka
// and the cdcd binary.
func needsServers(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Postgres, Kafka and cdcd")
	}
}
