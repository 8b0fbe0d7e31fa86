// Package httpapi is a test double of a generic JSON REST API, the kind an
// ERP, point-of-sale or warehouse system exposes: it stores JSON resources
// by path, checks credentials, honours idempotency keys, records every
// request, and injects seeded faults.
//
// Resources are keyed by their path as sent (escaped: /items/A%2F1). POST
// to a collection path creates a resource at <path>/<new id> (201); PUT creates (201) or replaces (200); PATCH merges
// into an existing resource (200, 404 if missing); DELETE removes it (204,
// 404 if missing); GET returns it, or lists a collection (see Paging).
// Responses carry the stored resource,
// wrapped in {"<Envelope>": ...} when Envelope is set. Errors are
// {"message": "..."}.
package httpapi

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Auth is the credentials the server demands; the zero value demands none.
// Requests that fail the check get 401 and have no effect.
type Auth struct {
	// Bearer, when set, is the required "Authorization: Bearer" token.
	Bearer string
	// Username and Password, when Username is set, are the required basic
	// credentials.
	Username, Password string
	// HMACSecret, when set, requires HMACHeader (default X-Signature) to
	// hold HMACPrefix + the HMAC-SHA256 of the body, hex or base64 per
	// HMACEncoding (default hex). With TimestampHeader set, the signed bytes
	// are "<timestamp>.<body>" and the timestamp (Unix seconds) must be
	// within 5 minutes of now.
	HMACSecret      string
	HMACHeader      string
	HMACPrefix      string
	HMACEncoding    string
	TimestampHeader string
}

// Faults injects failures into a seeded fraction of requests that passed
// authentication. 429 and 5xx answers have no effect; a timeout applies
// the request, then holds the response until the client gives up or Hang
// passes (an outcome the client cannot know).
type Faults struct {
	Seed                      uint64
	Rate429, Rate5xx, Timeout float64
	// RetryAfter is the Retry-After of injected 429s and 503s; default "1".
	RetryAfter string
	// Hang bounds a timeout; default 10s.
	Hang time.Duration
}

// Options configure a Server.
type Options struct {
	Auth   Auth
	Faults Faults
	// IdempotencyHeader names the idempotency key header; default
	// "Idempotency-Key".
	IdempotencyHeader string
	// IDField is the field that holds a resource's id; default "id".
	IDField string
	// Envelope, when set, wraps response resources: {"data": {...}}.
	Envelope string
	// Paging is how collections are listed.
	Paging Paging
	// NewID returns the id of the n-th created resource (n from 1);
	// default "<n>".
	NewID func(n int) string
}

// Request is one request the server received.
type Request struct {
	Method, Path, RawQuery string
	// EscapedPath is the path as sent.
	EscapedPath string
	Header      http.Header
	Body        []byte
	// IdempotencyKey is the request's key, if any.
	IdempotencyKey string
	// Status is the status answered (0 for a timeout).
	Status int
	// Replayed reports an answer replayed for a known idempotency key.
	Replayed bool
	// Fault names the injected fault: "", "scripted", "429", "5xx",
	// "timeout".
	Fault string
}

// Server is a running double. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server
	opts Options

	mu        sync.Mutex
	rng       *rand.Rand
	resources map[string]map[string]any
	requests  []Request
	idem      map[string]*saved
	script    []scripted
	created   int
	effects   int
}

type saved struct {
	fingerprint string
	status      int
	body        []byte
}

type scripted struct {
	status int
	header http.Header
	body   string
}

// New starts a server that closes when t ends.
func New(t testing.TB, opts Options) *Server {
	if opts.IdempotencyHeader == "" {
		opts.IdempotencyHeader = "Idempotency-Key"
	}
	if opts.IDField == "" {
		opts.IDField = "id"
	}
	if opts.Faults.RetryAfter == "" {
		opts.Faults.RetryAfter = "1"
	}
	if opts.Faults.Hang == 0 {
		opts.Faults.Hang = 10 * time.Second
	}
	s := &Server{
		opts:      opts,
		rng:       rand.New(rand.NewPCG(opts.Faults.Seed, opts.Faults.Seed^0x9e3779b97f4a7c15)),
		resources: map[string]map[string]any{},
		idem:      map[string]*saved{},
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Respond makes the next n authenticated requests answer status with
// header and body, without effect.
func (s *Server) Respond(n, status int, header http.Header, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.script = append(s.script, scripted{status, header, body})
	}
}

// Put stores a resource at path.
func (s *Server) Put(path string, resource map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resources[path] = clone(resource)
}

// Resource returns a copy of the resource at path.
func (s *Server) Resource(path string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.resources[path]
	return clone(r), ok
}

// Resources returns a copy of every resource, by path.
func (s *Server) Resources() map[string]map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[string]any, len(s.resources))
	for p, r := range s.resources {
		out[p] = clone(r)
	}
	return out
}

// Requests returns every request received, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	copy(out, s.requests)
	return out
}

// Effects is how many requests changed a resource (replays excluded).
func (s *Server) Effects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.effects
}
