// Package server is cdcd's one HTTP listener: /healthz, /readyz and
// /metrics, with room for the webhook intake and the admin API.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Check reports whether a component is ready; nil means ready.
type Check func() error

// Server is the HTTP listener.
type Server struct {
	addr   string
	log    zerolog.Logger
	mux    *http.ServeMux
	checks map[string]Check
}

// New builds the listener; it does not bind until Run.
func New(addr string, log zerolog.Logger, gatherer prometheus.Gatherer) *Server {
	s := &Server{
		addr:   addr,
		log:    log.With().Str("component", "http").Logger(),
		mux:    http.NewServeMux(),
		checks: map[string]Check{},
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	return s
}

// Handle mounts a handler on the listener.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Ready adds a readiness check, reported by name on /readyz.
func (s *Server) Ready(name string, c Check) { s.checks[name] = c }

func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	status := http.StatusOK
	var body []byte
	for name, c := range s.checks {
		if err := c(); err != nil {
			status = http.StatusServiceUnavailable
			body = fmt.Appendf(body, "%s: %v\n", name, err)
		} else {
			body = fmt.Appendf(body, "%s: ok\n", name)
		}
	}
	w.WriteHeader(status)
	w.Write(body)
}

// Run serves until ctx ends, then shuts down within five seconds.
func (s *Server) Run(ctx context.Context) error {
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen on %s (http.listen): %w", s.addr, err)
	}
	return s.Serve(ctx, l)
}

// Serve is Run on an existing listener.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	s.log.Info().Str("addr", l.Addr().String()).Msg("http listening")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shut down http: %w", err)
	}
	return nil
}
