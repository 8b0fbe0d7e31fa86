package outbound

import (
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

// TestPostgresFastShutdownWithUndeliveredChanges: while the vendor fails
// every call, so changes stay undelivered and unconfirmed, `pg_ctl stop -m
// fast` completes within seconds (cdcd lets go of the replication stream
// instead of holding the walsender). cdcd keeps running while Postgres is
// down; once Postgres and the vendor are back, every change is delivered,
// each contact created once.
func TestPostgresFastShutdownWithUndeliveredChanges(t *testing.T) {
	needsServers(t)
	t.Parallel()
	server := cdctest.StartPostgres(t)
	d := newDeploymentOn(t, server, false, hubspot.Options{})
	d.attempts = 1000
	g := newGate(t, d.hub.URL())
	d.vendor = g.srv.URL
	g.mode.Store(gateFail)
	p := d.start("all")
	w := newWorkload(t, d.url)
	w.insert(1, 30, "lead")
	cdctest.Eventually(t, 30*time.Second, "calls to the failing vendor", func() bool { return g.calls.Load() >= 3 })

	start := time.Now()
	if err := server.Stop("fast"); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("pg_ctl stop -m fast took %s", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Fatalf("pg_ctl stop -m fast took %s with undelivered changes", took.Round(time.Millisecond))
	}
	p.MustRun("while Postgres was down")
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	g.mode.Store(gatePass)
	waitConverged(t, d.url, nil, d.hub, 90*time.Second)
	p.MustRun("after Postgres came back")
	checkCreatedOnce(t, d.hub, w.ids)
}
