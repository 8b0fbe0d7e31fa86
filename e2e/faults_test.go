package e2e

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// stack is a database with the workload's table, a Kafka cluster and a
// cdcd streaming one to the other.
type stack struct {
	pg    *cdctest.Postgres
	url   string
	kafka *cdctest.Kafka
	cdcd  *daemon
}

func startStack(t *testing.T, schema string) *stack {
	t.Helper()
	s := &stack{pg: cdctest.StartPostgres(t), kafka: cdctest.StartKafka(t)}
	s.url = s.pg.CreateDB(t, "app")
	s.pg.Exec(t, "app", schema)
	config, httpAddr := writeConfig(t, s.url, s.kafka.Brokers())
	s.cdcd = startDaemon(t, config, httpAddr)
	s.cdcd.waitReady(60 * time.Second)
	return s
}

// checkWorkload waits until cdcd confirmed everything, then checks the
// topic against the workload and the table.
func (s *stack) checkWorkload(t *testing.T, w *workload) {
	t.Helper()
	waitCaughtUp(t, s.url, 90*time.Second)
	s.cdcd.mustBeRunning("after catching up")
	d := checkDelivery(t, readEvents(t, s.kafka.Brokers(), "cdcd.public.acct"))
	w.verify(t, d, s.url)
	t.Logf("%d transactions, %d changes, %d re-sent records", w.txns.Load(), len(w.committed), d.resends)
}

// TestKilledDaemonLosesNothing kills cdcd with SIGKILL at random points
// while transactions keep committing, restarting it each time: every
// committed change must reach Kafka, duplicates may only be re-sends of
// the same event, and each key's changes arrive first in commit order.
func TestKilledDaemonLosesNothing(t *testing.T) {
	needsServers(t)
	t.Parallel()
	s := startStack(t, workloadTable)
	w := newWorkload(100)
	stop := w.start(t, s.url)
	w.waitTxns(t, 100)
	for range 5 {
		// Killing at a random point, not at a known state, is the test.
		time.Sleep(500*time.Millisecond + rand.N(2500*time.Millisecond))
		s.cdcd.kill()
		s.cdcd.start()
	}
	w.waitTxns(t, 100)
	stop()
	s.checkWorkload(t, w)
}

// TestKafkaOutageLosesNothing stops every broker for a while as cdcd
// streams: cdcd must keep running, retry, and deliver everything in per-key
// order once Kafka is back.
//
// The 10s outage guards a bug: it outlasts ten produce attempts, after
// which the producer used to nack a batch while later batches of the same
// partition went through, so a key's newer changes reached Kafka before the
// re-sent older ones.
func TestKafkaOutageLosesNothing(t *testing.T) {
	needsServers(t)
	t.Parallel()
	for _, outage := range []time.Duration{3 * time.Second, 10 * time.Second} {
		t.Run(outage.String(), func(t *testing.T) {
			t.Parallel()
			s := startStack(t, workloadTable)
			w := newWorkload(100)
			stop := w.start(t, s.url)
			w.waitTxns(t, 200)
			s.kafka.Stop()
			// The outage lasts a fixed time: what is tested is what cdcd
			// does through it.
			time.Sleep(outage)
			s.cdcd.mustBeRunning("while Kafka was down")
			s.kafka.Restart()
			w.waitTxns(t, 200)
			stop()
			s.checkWorkload(t, w)
		})
	}
}

// TestPostgresRestartLosesNothing restarts Postgres under a streaming cdcd,
// cleanly (fast: the walsender sends what it has first) and as a crash
// (immediate): cdcd must reconnect by itself and deliver every change, in
// order.
func TestPostgresRestartLosesNothing(t *testing.T) {
	needsServers(t)
	t.Parallel()
	for _, mode := range []string{"fast", "immediate"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := startStack(t, workloadTable)
			w := newWorkload(100)
			stop := w.start(t, s.url)
			w.waitTxns(t, 300)
			// The workload pauses while the server is down: a COMMIT cut
			// off by the shutdown has an unknown outcome.
			stop()
			if err := s.pg.Stop(mode); err != nil {
				t.Fatal(err)
			}
			if err := s.pg.Start(); err != nil {
				t.Fatal(err)
			}
			stop = w.start(t, s.url)
			s.cdcd.waitReady(60 * time.Second)
			w.waitTxns(t, 300)
			stop()
			s.checkWorkload(t, w)
			// A shutdown cdcd notices is released and resumed; one it does
			// not (the connection just breaks) is an interruption.
			if !s.cdcd.logContains("replication interrupted; reconnecting") &&
				!s.cdcd.logContains("released the replication stream for the database's shutdown") {
				t.Error("cdcd did not log a reconnection")
			}
		})
	}
}
