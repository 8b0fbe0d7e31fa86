// Package hubspot is a test double of the HubSpot CRM objects API (v3
// shape): single and batch writes of contacts, companies, deals and any
// other object type, listing with cursors, bearer-token auth, the
// ten-secondly rolling rate limit, multi-status batch answers, duplicate
// detection on a unique property, seeded fault injection, and signed
// webhooks for every write, late, duplicated or out of order at will (see
// Webhooks).
//
// Every request, every write applied to a record and every 429 is kept for
// inspection. A Server is safe for concurrent use.
//
// Where HubSpot's behaviour is not documented the double picks the stricter
// reading: batch results and errors come back in a shuffled order (HubSpot
// does not promise input order), a batch create reports per-item errors
// (207) only when every input carries a distinct objectWriteTraceId and
// otherwise fails as a whole (409 naming one existing record, 400), the
// trace ids are echoed in results as the date-versioned reference shows or,
// as the v3 reference shows, not at all (Options.TraceIDs), and archived
// records free their unique value.
package hubspot

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Options configures a Server. The zero value is HubSpot's defaults.
type Options struct {
	// BasePath prefixes every object path. Default "/crm/v3/objects".
	BasePath string
	// Tokens are the accepted bearer tokens. Empty accepts any non-empty
	// token. Other requests get 401.
	Tokens []string
	// Limit requests per token in any rolling Window; more get 429 with
	// policyName TEN_SECONDLY_ROLLING. Defaults 100 and 10 s. A negative
	// Limit disables the limit.
	Limit  int
	Window time.Duration
	// DailyLimit, when positive, caps the requests per token over the
	// server's life; more get 429 with policyName DAILY.
	DailyLimit int
	// Unique maps an object type to its unique property, the only one that
	// upserts may use as idProperty and the one that makes a create
	// conflict (409). Default {"contacts": "email"}. Values compare
	// case-insensitively.
	Unique map[string]string
	// Properties, when set for an object type, lists its known properties;
	// writing another one is a validation error (PROPERTY_DOESNT_EXIST).
	Properties map[string][]string
	// TraceIDs says which batch results and per-input errors carry their
	// input's objectWriteTraceId. Default TraceIDsEcho.
	TraceIDs TraceIDs
	// WholeBatchErrors refuses a whole batch write for one bad input (409
	// naming one existing record, or 400) even when every input carries a
	// distinct objectWriteTraceId, as calls without multi-status do.
	WholeBatchErrors bool
	// Faults injects failures into a fraction of the calls.
	Faults Faults
	// Seed drives fault picks, the order of batch results and the
	// webhooks' delays, duplicates and order.
	Seed uint64
	// Webhooks announces every write to a URL; see Webhooks.
	Webhooks Webhooks
}

// Server is a running double. Close it when done.
type Server struct {
	opts   Options
	srv    *httptest.Server
	quit   chan struct{}
	closed sync.Once
	wg     sync.WaitGroup // webhook senders

	mu       sync.Mutex
	rng      *rand.Rand
	store    *store
	requests []Request
	seen     map[string][]time.Time // token → admission times in the current window
	daily    map[string]int
	forced   []Fault
	enums    map[string]map[string][]string // type → enumeration property → options (SetOptions)
	n429     int
	nextCorr uint64
	hooks    webhookState
}

// New starts a server with opts.
func New(opts Options) *Server {
	if opts.BasePath == "" {
		opts.BasePath = "/crm/v3/objects"
	}
	opts.BasePath = "/" + strings.Trim(opts.BasePath, "/")
	if opts.Limit == 0 {
		opts.Limit = 100
	}
	if opts.Window <= 0 {
		opts.Window = 10 * time.Second
	}
	if opts.Unique == nil {
		opts.Unique = map[string]string{"contacts": "email"}
	}
	opts.Faults = opts.Faults.withDefaults()
	opts.Webhooks = opts.Webhooks.withDefaults()
	s := &Server{
		opts:  opts,
		quit:  make(chan struct{}),
		rng:   rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		store: newStore(opts.Unique),
		seen:  map[string][]time.Time{},
		daily: map[string]int{},
	}
	s.hooks.wake = make(chan struct{}, 1)
	s.store.onWrite = s.announce
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.wg.Add(1)
	go s.sendWebhooks()
	return s
}

// URL is the server's base URL, without BasePath.
func (s *Server) URL() string { return s.srv.URL }

// Close ends stalled calls and stops the server.
func (s *Server) Close() {
	s.closed.Do(func() {
		close(s.quit)
		s.srv.CloseClientConnections()
		s.srv.Close()
		s.wg.Wait()
	})
}

// serve authenticates, rate-limits, injects faults, then routes. A call
// counts against the limit when its headers arrive.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	rec := &Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, At: time.Now()}
	sw := &statusWriter{ResponseWriter: w}
	defer func() { s.record(rec, sw.status) }()
	token, ok := s.authorize(r)
	if !ok {
		s.fail(sw, http.StatusUnauthorized, "INVALID_AUTHENTICATION",
			"Authentication credentials not found. This API supports OAuth 2.0 authentication.", nil)
		return
	}
	if !s.admit(sw, token, rec.At) {
		return
	}
	body, err := readBody(r)
	rec.Body = body
	if err != nil {
		s.fail(sw, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input: "+err.Error(), nil)
		return
	}
	rec.Fault = s.pickFault()
	switch rec.Fault {
	case 0:
		s.route(sw, r, body)
	case FaultTimeout:
		s.stall(sw, r)
	case FaultHangup:
		hangup(sw)
	case FaultTimeoutAfterApply:
		s.route(httptest.NewRecorder(), r, body)
		s.stall(sw, r)
	case FaultHangupAfterApply:
		s.route(httptest.NewRecorder(), r, body)
		hangup(sw)
	default:
		s.failStatus(sw, rec.Fault)
	}
}

func (s *Server) authorize(r *http.Request) (string, bool) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return "", false
	}
	if len(s.opts.Tokens) == 0 {
		return token, true
	}
	for _, t := range s.opts.Tokens {
		if t == token {
			return token, true
		}
	}
	return "", false
}

// admit applies the rolling and daily limits for token to a call that
// arrived at now and sets the rate-limit headers. Rejected calls do not count against the window.
func (s *Server) admit(w http.ResponseWriter, token string, now time.Time) bool {
	s.mu.Lock()
	log := s.seen[token]
	i := 0
	for i < len(log) && now.Sub(log[i]) >= s.opts.Window {
		i++
	}
	log = log[i:]
	limited, daily := s.opts.Limit > 0 && len(log) >= s.opts.Limit, s.opts.DailyLimit > 0 && s.daily[token] >= s.opts.DailyLimit
	if !limited && !daily {
		log = append(log, now)
		s.daily[token]++
	}
	s.seen[token] = log
	used, usedDaily := len(log), s.daily[token]
	s.mu.Unlock()

	h := w.Header()
	if s.opts.Limit > 0 {
		h.Set("X-HubSpot-RateLimit-Max", fmt.Sprint(s.opts.Limit))
		h.Set("X-HubSpot-RateLimit-Remaining", fmt.Sprint(max(0, s.opts.Limit-used)))
		h.Set("X-HubSpot-RateLimit-Interval-Milliseconds", fmt.Sprint(s.opts.Window.Milliseconds()))
	}
	if s.opts.DailyLimit > 0 {
		h.Set("X-HubSpot-RateLimit-Daily", fmt.Sprint(s.opts.DailyLimit))
		h.Set("X-HubSpot-RateLimit-Daily-Remaining", fmt.Sprint(max(0, s.opts.DailyLimit-usedDaily)))
	}
	switch {
	case daily:
		s.rateLimited(w, "DAILY")
		return false
	case limited:
		s.rateLimited(w, "TEN_SECONDLY_ROLLING")
		return false
	}
	return true
}

// route dispatches a path below BasePath: {type}, {type}/{id},
// {type}/batch/{op}.
func (s *Server) route(w http.ResponseWriter, r *http.Request, body []byte) {
	rest, ok := strings.CutPrefix(r.URL.Path, s.opts.BasePath+"/")
	parts := strings.Split(rest, "/")
	if !ok || parts[0] == "" {
		s.fail(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "Resource not found", nil)
		return
	}
	typ := parts[0]
	switch {
	case len(parts) == 1 && r.Method == http.MethodPost:
		s.createOne(w, typ, body)
	case len(parts) == 1 && r.Method == http.MethodGet:
		s.list(w, r, typ)
	case len(parts) == 2 && r.Method == http.MethodGet:
		s.getOne(w, r, typ, parts[1])
	case len(parts) == 2 && r.Method == http.MethodPatch:
		s.updateOne(w, r, typ, parts[1], body)
	case len(parts) == 2 && r.Method == http.MethodDelete:
		s.archiveOne(w, typ, parts[1])
	case len(parts) == 3 && parts[1] == "batch" && r.Method == http.MethodPost:
		s.batch(w, typ, parts[2], body)
	default:
		s.fail(w, http.StatusNotFound, "OBJECT_NOT_FOUND", fmt.Sprintf("No route for %s %s", r.Method, r.URL.Path), nil)
	}
}

func (s *Server) record(rec *Request, status int) {
	rec.Status = status
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == http.StatusTooManyRequests {
		s.n429++
	}
	s.requests = append(s.requests, *rec)
}

// statusWriter remembers the status written; 0 means none (a hang-up).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
