package pgwal

import (
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// TestFastShutdownWithUnacknowledgedChanges: a fast shutdown of Postgres
// completes within seconds while the reader holds changes the bus has not
// acknowledged (the walsender waits for them to be confirmed before it
// lets the shutdown finish): the reader lets go of the stream. Once the
// server is back, it resumes from the slot's confirmed position, so the
// changes come again, and confirms them once acknowledged.
func TestFastShutdownWithUnacknowledgedChanges(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", `CREATE TABLE t (id int PRIMARY KEY)`)
	col := &cdctest.Collector{Hold: true}
	cfg := testConfig(url, "t")
	cfg.Heartbeat = time.Second
	r, _, done := startReader(t, cfg, col)
	cdctest.Eventually(t, 30*time.Second, "streaming", r.Streaming)
	pg.Exec(t, "app", `INSERT INTO t VALUES (1), (2)`)
	pg.Exec(t, "app", `INSERT INTO t VALUES (3)`)
	held := col.WaitFor(t, 30*time.Second, "the inserts", func(es []cdc.Event) bool { return len(es) == 3 })
	confirmed := slotLSN(t, url, "cdcd")

	fastRestart(t, pg, done)
	if got := slotLSN(t, url, "cdcd"); got != confirmed {
		t.Fatalf("slot confirmed %v across the shutdown, was %v; nothing was acknowledged", got, confirmed)
	}
	col.Release(nil) // the first session's acks: too late to confirm anything
	again := col.WaitFor(t, 60*time.Second, "the changes again", func(es []cdc.Event) bool { return len(es) >= 6 })
	for i, e := range again[3:6] {
		if e.ID() != held[i].ID() {
			t.Fatalf("event %d after the restart is %s, want %s", i, e.ID(), held[i].ID())
		}
	}
	col.Release(nil)
	last := held[2].Pos.CommitLSN
	cdctest.Eventually(t, 30*time.Second, "the slot to confirm the changes", func() bool { return slotLSN(t, url, "cdcd") >= last })
}

// TestFastShutdownWithoutTheMonitor: when cdcd cannot open an ordinary
// connection besides the replication one (here its role may hold one
// connection), it still tells the walsender finishing a shutdown by its
// keepalives, lets go, and the fast shutdown completes within seconds.
func TestFastShutdownWithoutTheMonitor(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	pg.CreateDB(t, "app")
	pg.Exec(t, "app", `CREATE ROLE rep LOGIN REPLICATION CONNECTION LIMIT 1;
		GRANT CREATE ON DATABASE app TO rep;
		CREATE TABLE t (id int PRIMARY KEY);
		ALTER TABLE t OWNER TO rep`)
	url := strings.Replace(pg.URL("app"), "postgres@", "rep@", 1)
	col := &cdctest.Collector{Hold: true}
	cfg := testConfig(url, "t")
	cfg.Heartbeat = time.Second
	r, _, done := startReader(t, cfg, col)
	cdctest.Eventually(t, 30*time.Second, "streaming", r.Streaming)
	pg.Exec(t, "app", `INSERT INTO t VALUES (1)`)
	col.WaitFor(t, 30*time.Second, "the insert", func(es []cdc.Event) bool { return len(es) == 1 })

	fastRestart(t, pg, done)
	col.WaitFor(t, 60*time.Second, "the change again", func(es []cdc.Event) bool { return len(es) >= 2 })
}

// fastRestart stops the server with a fast shutdown, which must complete
// within 10 s while the reader holds unacknowledged changes, checks the
// reader kept running, and starts the server again.
func fastRestart(t *testing.T, pg *cdctest.Postgres, done <-chan error) {
	t.Helper()
	start := time.Now()
	if err := pg.Stop("fast"); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("fast shutdown took %s", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Fatalf("fast shutdown took %s with unacknowledged changes", took.Round(time.Millisecond))
	}
	select {
	case err := <-done:
		t.Fatalf("the reader ended with the server: %v", err)
	default:
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
}
