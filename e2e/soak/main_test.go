package soak

import (
	"flag"
	"os"
	"testing"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/e2e/e2etest"
)

var (
	// cdcdBin is the cdcd binary built for this test run.
	cdcdBin string
	// pg is the Postgres server every run shares, each with a database
	// and a replication slot of its own.
	pg *cdctest.Postgres
)

// The long run: go test ./e2e/soak -run TestSoakLong -soak.long
// [-soak.seed N -soak.records 300 -soak.edits 200 -soak.runs 3 -soak.faults].
var (
	long       = flag.Bool("soak.long", false, "run TestSoakLong")
	seedFlag   = flag.Uint64("soak.seed", 0, "first seed of TestSoakLong (0: from the clock)")
	recordsArg = flag.Int("soak.records", 300, "contacts synced in TestSoakLong")
	hotArg     = flag.Int("soak.hot", 40, "contacts edited in TestSoakLong")
	editsArg   = flag.Int("soak.edits", 200, "operations per run of TestSoakLong")
	runsArg    = flag.Int("soak.runs", 1, "runs (seeds) of TestSoakLong")
	faultsArg  = flag.Bool("soak.faults", false, "TestSoakLong with API faults and two SIGKILLs")
	kafkaArg   = flag.Bool("soak.kafka", false, "TestSoakLong on Kafka (kfake) instead of the in-process bus")
	shrinkArg  = flag.Int("soak.shrink", 40, "runs the shrinker may spend on a failing history")
)

func TestMain(m *testing.M) {
	// Commit timestamps tell the newest rule when a local row changed.
	os.Exit(e2etest.Main(m, "soak", func(bin string, p *cdctest.Postgres) { cdcdBin, pg = bin, p }, "track_commit_timestamp = on"))
}
