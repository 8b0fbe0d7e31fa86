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

// Limits bound what clients may hold of the listener. Zero values take
// the defaults: 30s timeouts and 1024 connections.
type Limits struct {
	// ReadTimeout bounds reading a request, headers and body; headers
	// must arrive within 10s (or ReadTimeout if shorter). WriteTimeout
	// bounds the handling and the answer. IdleTimeout closes a kept-alive
	// connection that sends no next request.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxConnections caps the open connections; one more is closed as
	// soon as it is accepted, unanswered.
	MaxConnections int
}

func (l Limits) withDefaults() Limits {
	for _, d := range []*time.Duration{&l.ReadTimeout, &l.WriteTimeout, &l.IdleTimeout} {
		if *d <= 0 {
			*d = 30 * time.Second
		}
	}
	if l.MaxConnections <= 0 {
		l.MaxConnections = 1024
	}
	return l
}

// Server is the HTTP listener.
type Server struct {
	addr   string
	lim    Limits
	log    zerolog.Logger
	mux    *http.ServeMux
	checks map[string]Check
	notes  map[string]func() string
}

// New builds the listener; it does not bind until Run.
func New(addr string, lim Limits, log zerolog.Logger, gatherer prometheus.Gatherer) *Server {
	s := &Server{
		addr:   addr,
		lim:    lim.withDefaults(),
		log:    log.With().Str("component", "http").Logger(),
		mux:    http.NewServeMux(),
		checks: map[string]Check{},
		notes:  map[string]func() string{},
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

// Note adds a line to /readyz that informs without deciding readiness
// (the health states: an unhealthy sink is no reason to stop taking
// webhooks).
func (s *Server) Note(name string, n func() string) { s.notes[name] = n }

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
	for name, n := range s.notes {
		body = fmt.Appendf(body, "%s: %s\n", name, n())
	}
	w.WriteHeader(status)
	w.Write(body)
}

// Run serves until ctx ends, then shuts down within three seconds.
func (s *Server) Run(ctx context.Context) error {
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen on %s (http.listen): %w", s.addr, err)
	}
	return s.Serve(ctx, l)
}

// Serve is Run on an existing listener.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: min(10*time.Second, s.lim.ReadTimeout),
		ReadTimeout:       s.lim.ReadTimeout,
		WriteTimeout:      s.lim.WriteTimeout,
		IdleTimeout:       s.lim.IdleTimeout,
	}
	s.log.Info().Str("addr", l.Addr().String()).Int("max_connections", s.lim.MaxConnections).Msg("http listening")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(newCappedListener(l, s.lim.MaxConnections, s.log)) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shut down http: %w", err)
	}
	return nil
}
