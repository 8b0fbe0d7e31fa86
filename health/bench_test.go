package health

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
)

// BenchmarkEvaluate20 is one evaluation at 20 pipelines, on a registry
// that also holds the Go and process collectors as cdcd's does. At the
// default interval (5s), ns/op / 5e9 is the share of one CPU it costs.
func BenchmarkEvaluate20(b *testing.B) {
	f := newFakeDelivery()
	f.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var ps []Pipeline
	for i := range 20 {
		name := fmt.Sprintf("pipeline-%02d", i)
		ps = append(ps, Pipeline{Name: name, System: "crm"})
		f.deliver(name, 1)
	}
	m, err := New(testHealth(), ps, f.reg, nil, zerolog.Nop(), f.reg)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for _, p := range ps {
			f.deliver(p.Name, 1)
		}
		m.Evaluate(ctx, t0.Add(time.Duration(i)*5*time.Second))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/5e9*100, "%cpu@5s")
}

// BenchmarkEvaluate20WithStore adds what a daemon with cdcd's store does
// each evaluation: counting dead letters and failed jobs in Postgres.
func BenchmarkEvaluate20WithStore(b *testing.B) {
	st := openStore(b)
	f := newFakeDelivery()
	f.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var ps []Pipeline
	for i := range 20 {
		name := fmt.Sprintf("pipeline-%02d", i)
		ps = append(ps, Pipeline{Name: name, System: "crm"})
		f.deliver(name, 1)
	}
	m, err := New(testHealth(), ps, f.reg, st, zerolog.Nop(), f.reg)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Now()
	for i := 0; b.Loop(); i++ {
		for _, p := range ps {
			f.deliver(p.Name, 1)
		}
		m.Evaluate(ctx, t0.Add(time.Duration(i)*5*time.Second))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/5e9*100, "%wall@5s")
}
