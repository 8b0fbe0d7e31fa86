package outbound

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/e2e/e2etest"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

var (
	// cdcdBin is the cdcd binary built for this test run.
	cdcdBin string
	// pg is the Postgres server every test shares, each with a database and
	// a replication slot of its own.
	pg *cdctest.Postgres
)

func TestMain(m *testing.M) {
	os.Exit(e2etest.Main(m, "outbound", func(bin string, p *cdctest.Postgres) { cdcdBin, pg = bin, p }))
}

// needsServers skips t under -short: every test here starts cdcd against
// Postgres, and some Kafka.
func needsServers(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Postgres, Kafka and cdcd")
	}
}

var (
	unsafeName = regexp.MustCompile(`[^a-z0-9]+`)
	databases  atomic.Int32
)

// dbName is a database and slot name for t, unique in the shared server
// even when tests repeat (-count).
func dbName(t *testing.T) string {
	n := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "_"), "_")
	if len(n) > 50 {
		n = n[len(n)-50:]
	}
	return fmt.Sprintf("t%d_%s", databases.Add(1), n)
}

// poll calls check every interval until it returns nil, and fails the test
// with its last error at the deadline. Use it for checks too heavy for
// cdctest.Eventually's 10ms pace.
func poll(t *testing.T, timeout, interval time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		<-tick.C
	}
}
