package promshare

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegisterShares(t *testing.T) {
	reg := prometheus.NewRegistry()
	newVec := func() *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"route"})
	}
	a, err := Register(reg, newVec())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Register(reg, newVec())
	if err != nil || a != b {
		t.Fatalf("second registration: %v, shared %v", err, a == b)
	}
	if _, err := Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "other"}, []string{"route"})); err == nil {
		t.Fatal("a conflicting description registered")
	}
	if c, err := Register[prometheus.Counter](nil, prometheus.NewCounter(prometheus.CounterOpts{Name: "y"})); err != nil || c == nil {
		t.Fatal("nil registerer")
	}
}
