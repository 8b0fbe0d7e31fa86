package outbound

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

// flakyFaults fail 30% of the calls: rate limits, server errors, and
// timeouts, some of them after the write was applied.
var flakyFaults = hubspot.Faults{
	Rate: 0.3,
	Kinds: []hubspot.Fault{hubspot.Fault429, hubspot.Fault500, hubspot.Fault502, hubspot.Fault503,
		hubspot.FaultTimeout, hubspot.FaultTimeoutAfterApply},
}

// busModes are the ways to run cdcd: the in-process bus in one process,
// Kafka in one process, and Kafka with capture and sinks in two.
var busModes = []struct {
	name  string
	kafka bool
	roles []string
}{
	{"in-process", false, []string{"all"}},
	{"kafka", true, []string{"all"}},
	{"kafka-split", true, []string{"capture", "sinks"}},
}

// TestFlakyVendorConverges: with a vendor that fails 30% of the calls,
// inserts, repeated updates and deletes all reach it; no contact is created
// twice, no record's history goes back to an older revision, and the audit
// trail shows the retries and settles every event exactly once.
func TestFlakyVendorConverges(t *testing.T) {
	for _, mode := range busModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			d := newDeployment(t, mode.kafka, hubspot.Options{Faults: flakyFaults})
			for _, role := range mode.roles {
				d.start(role)
			}
			w := newWorkload(t, d.url)
			w.pace, w.paceEvery = func() { waitCalled(t, d.hub) }, 15
			w.insert(1, 300, "lead")
			w.updateRounds(3, 0.5)
			doomed := slices.Clone(w.ids[:10])
			waitLive(t, d.hub, doomed, 60*time.Second)
			w.remove(doomed)

			waitConverged(t, d.url, w.deleted, d.hub, 90*time.Second)
			all := make([]int, 300)
			for i := range all {
				all[i] = i + 1
			}
			checkCreatedOnce(t, d.hub, all)
			checkOrder(t, d.hub)

			tr := waitSettled(t, d.url, w.changes, 30*time.Second)
			if tr.events != w.changes || tr.once != w.changes {
				t.Errorf("audit trail: %d events, %d settled exactly once; the workload made %d changes", tr.events, tr.once, w.changes)
			}
			if tr.retried == 0 {
				t.Error("audit trail: no retried attempt, though the vendor failed calls")
			}
			if tr.dead != 0 {
				t.Errorf("audit trail: %d dead-lettered records; every failure was transient", tr.dead)
			}
			faulted := 0
			reqs := d.hub.Requests()
			for _, r := range reqs {
				if r.Fault != 0 {
					faulted++
				}
			}
			if faulted == 0 {
				t.Errorf("the double injected no fault in %d calls", len(reqs))
			}
			t.Logf("%d changes, %d calls, %d faults, %d 429s, %d retried attempts", w.changes, len(reqs), faulted, d.hub.Count429(), tr.retried)
		})
	}
}

// waitCalled waits until the double receives another call.
func waitCalled(t *testing.T, hub *hubspot.Server) {
	t.Helper()
	n := len(hub.Requests())
	cdctest.Eventually(t, 30*time.Second, "a call to the vendor", func() bool { return len(hub.Requests()) > n })
}

// waitLive waits until the double has a live record for each contact.
func waitLive(t *testing.T, hub *hubspot.Server, ids []int, timeout time.Duration) {
	t.Helper()
	poll(t, timeout, 100*time.Millisecond, func() error {
		live := map[string]bool{}
		for _, o := range hub.Objects("contacts") {
			if !o.Archived {
				live[o.Properties["email"]] = true
			}
		}
		for _, id := range ids {
			if !live[emailOf(id)] {
				return fmt.Errorf("contact %d has no live record in the double", id)
			}
		}
		return nil
	})
}
