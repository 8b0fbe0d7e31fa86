package pgwal

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cdcd-dev/cdcd/cdc"
)

// eventRun counts as event does, one by one.
func TestEventRunCountsEachEvent(t *testing.T) {
	events := []cdc.Event{
		{Op: cdc.OpRead, Schema: "public", Table: "a"}, {Op: cdc.OpRead, Schema: "public", Table: "a"},
		{Op: cdc.OpUpdate, Schema: "public", Table: "a"}, {Op: cdc.OpRead, Schema: "public", Table: "a"},
		{Op: cdc.OpRead, Schema: "s", Table: "a"}, {Op: cdc.OpRead, Schema: "public", Table: "b"},
	}
	one, run := newMetrics(nil), newMetrics(nil)
	for i := range events {
		one.event(&events[i])
	}
	run.eventRun(events)
	run.eventRun(nil)
	for _, l := range [][2]string{{"public.a", "r"}, {"public.a", "u"}, {"s.a", "r"}, {"public.b", "r"}} {
		want := testutil.ToFloat64(one.events.WithLabelValues(l[0], l[1]))
		if got := testutil.ToFloat64(run.events.WithLabelValues(l[0], l[1])); got != want || want == 0 {
			t.Errorf("%v: %v, want %v", l, got, want)
		}
	}
}
