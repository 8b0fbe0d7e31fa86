package delivery

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Writes overlap: the gauge is the oldest change of any Write whose calls
// are not over, not the last Write's (which hid an older Write still in
// retry, or read 0 once a later Write ended).
func TestOldestPendingOverOverlappingWrites(t *testing.T) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
	o := &oldestPending{gauge: g, writes: map[int]float64{}}
	value := func() float64 {
		var m dto.Metric
		if err := g.Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetGauge().GetValue()
	}
	endA := o.begin(100)
	endB := o.begin(200)
	if v := value(); v != 100 {
		t.Fatalf("two Writes in flight: %v, want the older 100", v)
	}
	endC := o.begin(300)
	endB()
	if v := value(); v != 100 {
		t.Fatalf("after the second Write's calls: %v, want 100", v)
	}
	endA()
	endA() // twice is harmless
	if v := value(); v != 300 {
		t.Fatalf("after the first Write's calls: %v, want 300 (the Write still waiting)", v)
	}
	endC()
	if v := value(); v != 0 {
		t.Fatalf("no Write in flight: %v, want 0", v)
	}
}
