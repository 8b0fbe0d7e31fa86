package soak

import (
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// skipShort skips tests that start Postgres and cdcd under -short.
func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Postgres and cdcd")
	}
}

// TestSoak is the short run of CI: 20 contacts, 8 of them edited 60
// times over about 6 s, no faults. Seed 1 found the late webhook of one
// property dropped after a later one of another (HubSpot then held a
// name the local row never got, and no conflict said why); it stays as
// the regression; on failure, the shrinker gets two more runs.
func TestSoak(t *testing.T) {
	skipShort(t)
	t.Parallel()
	soak(t, params{Seed: 1, Records: 20, Hot: 8, Edits: 60, Gap: 100 * time.Millisecond, Deletes: 0.03}, options{}, 2)
}

// TestSoakFaults is the short run with faults: a fifth of the HubSpot
// calls fail (429, 5xx, stalls, hang-ups); on the in-process bus cdcd is
// also SIGKILLed twice. Kafka's kills cost a consumer session timeout
// (30 s) each, so they run in the long soak (-soak.kafka -soak.faults).
func TestSoakFaults(t *testing.T) {
	skipShort(t)
	t.Parallel()
	p := params{Seed: 100, Records: 20, Hot: 8, Edits: 40, Gap: 100 * time.Millisecond, Deletes: 0.03}
	t.Run("in-process", func(t *testing.T) {
		t.Parallel()
		soak(t, p, options{Faults: 0.2, Kills: 2}, 0)
	})
	t.Run("kafka", func(t *testing.T) {
		t.Parallel()
		soak(t, p, options{Kafka: cdctest.StartKafka(t), Faults: 0.2}, 0)
	})
}

// TestSoakLong is the long run, off unless -soak.long is given.
func TestSoakLong(t *testing.T) {
	if !*long {
		t.Skip("the long soak runs with -soak.long")
	}
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano() % 1_000_000)
	}
	o := options{}
	if *kafkaArg {
		o.Kafka = cdctest.StartKafka(t)
	}
	if *faultsArg {
		o.Faults, o.Kills = 0.2, 2
	}
	for i := 0; i < *runsArg; i++ {
		p := params{Seed: seed + uint64(i), Records: *recordsArg, Hot: *hotArg, Edits: *editsArg, Gap: 100 * time.Millisecond, Deletes: 0.03}
		soak(t, p, o, *shrinkArg)
	}
}
