package outbound

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

// TestKilledSinkWorkerLosesNothing: a process delivering to a slow vendor
// is killed with SIGKILL while writes are in flight, and the workload goes
// on while it is down. Once it is restarted, every change reaches the
// vendor and no contact is created twice: with Kafka the offsets were not
// committed past undelivered events, in process the slot was not confirmed
// past them.
func TestKilledSinkWorkerLosesNothing(t *testing.T) {
	for _, mode := range []struct {
		name   string
		kafka  bool
		roles  []string
		victim string
	}{
		{"kafka-split", true, []string{"capture", "sinks"}, "sinks"},
		{"in-process", false, []string{"all"}, "all"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			// Slow calls, and some applied but answered only after a stall:
			// the writer cannot tell whether they took effect.
			d := newDeployment(t, mode.kafka, hubspot.Options{Faults: hubspot.Faults{
				Rate: 0.3, Kinds: []hubspot.Fault{hubspot.FaultTimeoutAfterApply}, Stall: 300 * time.Millisecond}})
			proxy := newSlowProxy(t, d.hub.URL(), 150*time.Millisecond)
			d.vendor = proxy.URL()
			var victim *proc
			for _, role := range mode.roles {
				if p := d.start(role); role == mode.victim {
					victim = p
				}
			}

			w := newWorkload(t, d.url)
			killAt, chunks, killed := 2+rand.IntN(16), 0, false
			w.pace, w.paceEvery = func() {
				if killed {
					return // changes pile up while the worker is down
				}
				waitCalled(t, d.hub)
				// Past the chosen chunk, kill as soon as a write is in flight;
				// when none is, the workload goes on and the next chunk tries.
				if chunks++; chunks < killAt || !proxy.busy(time.Second) {
					return
				}
				victim.kill()
				killed = true
			}, 15
			w.insert(1, 200, "lead")
			w.updateRounds(2, 0.5)
			if !killed {
				t.Fatal("the workload ended before the kill")
			}
			createdBefore := len(d.hub.Objects("contacts"))
			victim.restart()

			waitConverged(t, d.url, nil, d.hub, 90*time.Second)
			all := make([]int, 200)
			for i := range all {
				all[i] = i + 1
			}
			checkCreatedOnce(t, d.hub, all)
			t.Logf("%d of 200 contacts created before the kill, %d changes, %d calls", createdBefore, w.changes, len(d.hub.Requests()))
		})
	}
}
