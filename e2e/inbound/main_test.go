package inbound

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/e2e/e2etest"
)

var (
	// cdcdBin is the cdcd binary built for this test run.
	cdcdBin string
	// pg is the Postgres server every test shares, each with a database and
	// a replication slot of its own.
	pg *cdctest.Postgres
)

func TestMain(m *testing.M) {
	// Commit timestamps tell the newest rule when a local row changed.
	os.Exit(e2etest.Main(m, "inbound", func(bin string, p *cdctest.Postgres) { cdcdBin, pg = bin, p }, "track_commit_timestamp = on"))
}

var (
	unsafeName = regexp.MustCompile(`[^a-z0-9]+`)
	databases  atomic.Int32
)

// newDB creates a database for t, whose name is also its slot's, and
// drops the slot when t ends.
func newDB(t *testing.T) (name, url string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Postgres, Kafka and cdcd")
	}
	name = strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "_"), "_")
	if len(name) > 50 {
		name = name[len(name)-50:]
	}
	name = fmt.Sprintf("t%d_%s", databases.Add(1), name)
	url = pg.CreateDB(t, name)
	t.Cleanup(func() {
		_ = pg.ExecErr("postgres", fmt.Sprintf("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '%s'", name))
	})
	return name, url
}

func execSQL(t *testing.T, url, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// query returns the first column of the first row as text ("" for none).
func query(t *testing.T, url, sql string, args ...any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var s *string
	err = conn.QueryRow(ctx, sql, args...).Scan(&s)
	if err == pgx.ErrNoRows || s == nil {
		return ""
	}
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return *s
}

// settle bounds how long a test waits for two-way sync to converge where
// no figure is being tested. Sync takes seconds, but with Kafka a consumer
// group that rebalances while a member is inside a write waits up to the
// group's 30s rebalance timeout, and a loaded 2-core machine running the
// other e2e packages beside it stretches every step.
const settle = 90 * time.Second

// poll calls check every 50ms until it returns nil, and fails the test
// with its last error at the deadline.
func poll(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// start writes the config and runs cdcd until t ends, waiting until it
// is ready.
func start(t *testing.T, config, listen string, args ...string) *e2etest.Process {
	t.Helper()
	path := t.TempDir() + "/cdcd.yaml"
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p := e2etest.NewProcess(t, strings.Join(append([]string{"cdcd"}, args...), " "), cdcdBin, append([]string{"run", "--config", path}, args...)...)
	p.Start()
	p.WaitReady(listen, 60*time.Second)
	return p
}

// kafkaSection is the kafka: section for k, or "" for the in-process bus.
func kafkaSection(k *cdctest.Kafka) string {
	if k == nil {
		return ""
	}
	quoted := make([]string, 0, len(k.Brokers()))
	for _, b := range k.Brokers() {
		quoted = append(quoted, fmt.Sprintf("%q", b))
	}
	return fmt.Sprintf("kafka:\n  brokers: [%s]\n  topics: {partitions: 1}\n", strings.Join(quoted, ", "))
}

// bus runs f once per bus.
func bus(t *testing.T, f func(t *testing.T, k *cdctest.Kafka)) {
	t.Run("in-process", func(t *testing.T) {
		t.Parallel()
		f(t, nil)
	})
	t.Run("kafka", func(t *testing.T) {
		t.Parallel()
		if testing.Short() {
			t.Skip("starts Kafka")
		}
		f(t, cdctest.StartKafka(t))
	})
}
