package http

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// BenchmarkWrite writes records one per request to a local endpoint that
// answers 204 at once, and reports events/s and the CPU time of the whole
// process (writer and endpoint) per 1,000 events.
func BenchmarkWrite(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c := NewConfig()
	c.Rate = ratelimit.Rate{Requests: 1 << 30, Per: time.Second}
	c.Update = &Request{Method: "PUT", URL: srv.URL + "/stock/{{.Fields.sku}}"}
	c.Auth = Auth{Type: "hmac", Secret: "bench", TimestampHeader: "X-Ts"}
	w, err := New("bench", c, zerolog.Nop(), ratelimit.NewLimiters())
	if err != nil {
		b.Fatal(err)
	}
	fields := map[string]any{"sku": "SKU-000123", "location": "W1", "available": float64(42), "updated_at": "2026-03-01T12:00:00Z"}

	for _, par := range []int{1, 4} {
		b.Run(fmt.Sprintf("goroutines=%d", par), func(b *testing.B) {
			cpu0 := cpuTime()
			start := time.Now()
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range par {
				wg.Go(func() {
					recs := []syncapi.Record{{Event: &cdc.Event{DeliveryID: "ev-1"}, Op: cdc.OpUpdate, Object: "stock", Key: `{"sku":"SKU-000123"}`, ExternalID: "x", Fields: fields}}
					for next.Add(1) <= int64(b.N) {
						res, err := w.Write(context.Background(), recs)
						if err != nil || res[0].Err != nil {
							b.Errorf("write: %v %v", err, res[0].Err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			elapsed, cpu := time.Since(start), cpuTime()-cpu0
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(cpu.Milliseconds())*1000/float64(b.N), "cpu-ms/1k-events")
		})
	}
}

// cpuTime is the user plus system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCreate is the outbound benchmark's call (deploy/bench/outbound):
// a POST of a record's fields to a constant URL, answered 201 with the
// new record's id, read through id_path, from 16 goroutines.
func BenchmarkCreate(b *testing.B) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":"%d"}`, n.Add(1))
	}))
	defer srv.Close()
	c := NewConfig()
	c.Rate = ratelimit.Rate{Requests: 1 << 30, Per: time.Second}
	c.Create = &Request{Method: "POST", URL: srv.URL + "/items"}
	c.IDPath = "id"
	w, err := New("bench", c, zerolog.Nop(), ratelimit.NewLimiters())
	if err != nil {
		b.Fatal(err)
	}
	fields := map[string]any{"id": json.Number("123"), "name": "item 123", "sku": "SKU-000123", "qty": json.Number("23"),
		"price": "123.50", "active": true, "updated_at": "2026-12-01T12:00:00.000000Z", "note": "a note about item 123"}
	b.ReportAllocs()
	cpu0 := cpuTime()
	start := time.Now()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		recs := []syncapi.Record{{Event: &cdc.Event{DeliveryID: "ev-1"}, Op: cdc.OpCreate, Object: "items", Key: `{"id":123}`, Fields: fields}}
		for pb.Next() {
			res, err := w.Write(context.Background(), recs)
			if err != nil || res[0].Err != nil || res[0].ExternalID == "" {
				b.Errorf("write: %v %v %+v", err, res[0].Err, res[0])
				return
			}
		}
	})
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")
}
