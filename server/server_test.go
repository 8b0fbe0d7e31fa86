package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func TestHealthReadyMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "cdcd_test_total", Help: "x"})
	reg.MustRegister(c)
	c.Add(3)
	s := New("", Limits{}, zerolog.Nop(), reg)
	var streaming atomic.Bool
	s.Ready("capture", func() error {
		if !streaming.Load() {
			return errors.New("not streaming")
		}
		return nil
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx, l) }()
	base := "http://" + l.Addr().String()
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "capture: not streaming") {
		t.Fatalf("readyz while not streaming: %d %q", code, body)
	}
	s.Note("health", func() string { return "unhealthy (pipeline p: crm answered nothing but errors for 6m)" })
	streaming.Store(true)
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, "health: unhealthy (pipeline p") {
		t.Fatalf("readyz while streaming, unhealthy: %d %q, want 200 with the health line", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "cdcd_test_total 3") {
		t.Fatalf("metrics: %d %q", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
