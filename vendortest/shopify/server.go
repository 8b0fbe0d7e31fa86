// Package shopify is an in-process double of the Shopify Admin API's
// inventory endpoints: REST inventory_levels/set.json, the REST list of a
// location's levels (inventory_levels.json, Link header pagination) and GraphQL
// inventorySetQuantities, with access-token checks, the REST leaky bucket
// (X-Shopify-Shop-Api-Call-Limit, 429 with Retry-After), compare-and-set
// user errors as Shopify returns them, and idempotency keys.
package shopify

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Request is one request the double received.
type Request struct {
	Version string // the API version in the path
	Path    string // after /admin/api/<version>/
	Token   string
	Body    json.RawMessage
}

// Response is a scripted answer.
type Response struct {
	Status int
	Body   string
	Header http.Header
}

// Server is the double. Levels are keyed by numeric inventory item and
// location ids.
type Server struct {
	srv   *httptest.Server
	token string

	mu       sync.Mutex
	levels   map[[2]string]int64
	requests []Request
	script   []Response
	bucket   float64 // calls in the REST bucket
	size     int
	leak     float64 // calls per second
	drained  time.Time
	replies  map[string]reply // idempotency key -> first response
	running  map[string]bool  // idempotency keys of mutations in progress
	slow     time.Duration    // the next mutation takes this long
	failNext bool             // the next mutation fails inside Shopify
	oldest   string           // oldest supported version; older ones fall forward
	version  string           // of the request being served
	now      func() time.Time
}

// reply is what a mutation answered, for a repeat of its idempotency key.
type reply struct {
	vars   string // the variables but the key: a mismatch is refused
	failed bool
	body   []byte
}

// New starts a double that accepts token and stops when the test ends. Its
// REST bucket holds 40 calls and leaks 2 per second, a standard plan's.
func New(t testing.TB, token string) *Server {
	s := &Server{token: token, levels: map[[2]string]int64{}, size: 40, leak: 2,
		replies: map[string]reply{}, running: map[string]bool{}, now: time.Now}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the shop's base URL.
func (s *Server) URL() string { return s.srv.URL }

// Bucket resizes the REST leaky bucket.
func (s *Server) Bucket(size int, leakPerSecond float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.size, s.leak = size, leakPerSecond
}

// SetLevel stocks item at location with the quantity, as a sale or another
// app would.
func (s *Server) SetLevel(item, location string, available int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.levels[[2]string{item, location}] = available
}

// Level returns the available quantity of item at location.
func (s *Server) Level(item, location string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.levels[[2]string{item, location}]
	return v, ok
}

// Oldest sets the oldest supported API version. A request for an older
// (retired) version is not refused: Shopify serves it with the oldest
// supported version, and says which in X-Shopify-API-Version ("API
// versioning", shopify.dev/docs/api/usage/versioning). Every answer
// carries that header.
func (s *Server) Oldest(version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oldest = version
}

// SlowNext makes the next mutation take d: a repeat of its idempotency
// key meanwhile answers IDEMPOTENCY_CONCURRENT_REQUEST.
func (s *Server) SlowNext(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slow = d
}

// FailNext makes the next mutation fail inside Shopify (a top-level
// INTERNAL_SERVER_ERROR, nothing applied): a repeat of its idempotency key
// answers IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED.
func (s *Server) FailNext() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = true
}

// ExpireKeys forgets every idempotency key, as the retention window
// does: a late retry is then a new operation.
func (s *Server) ExpireKeys() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.replies)
}

// Respond queues answers for the next requests, which are then not
// applied.
func (s *Server) Respond(rs ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, rs...)
}

// Requests returns what the double received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rest, ok := strings.CutPrefix(r.URL.Path, "/admin/api/")
	version, path, _ := strings.Cut(rest, "/")
	if s.oldest != "" && version != "unstable" && version < s.oldest {
		version = s.oldest
	}
	w.Header().Set("X-Shopify-API-Version", version)
	body, _ := io.ReadAll(r.Body)
	token := r.Header.Get("X-Shopify-Access-Token")
	s.requests = append(s.requests, Request{Version: version, Path: path, Token: token, Body: body})
	if len(s.script) > 0 {
		resp := s.script[0]
		s.script = s.script[1:]
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.Status)
		io.WriteString(w, resp.Body)
		return
	}
	s.version = version
	switch {
	case ok && r.Method == http.MethodGet && path == "inventory_levels.json" && token != s.token:
		writeJSON(w, http.StatusUnauthorized, map[string]any{"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})
	case ok && r.Method == http.MethodGet && path == "inventory_levels.json":
		s.restList(w, r.URL.Query())
	case !ok || r.Method != http.MethodPost:
		writeJSON(w, http.StatusNotFound, map[string]any{"errors": "Not Found"})
	case token != s.token:
		writeJSON(w, http.StatusUnauthorized, map[string]any{"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})
	case path == "inventory_levels/set.json":
		s.restSet(w, body)
	case path == "graphql.json":
		s.graphql(w, version, body)
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"errors": "Not Found"})
	}
}

// take adds a call to the REST bucket, or answers 429 when it is full.
func (s *Server) take(w http.ResponseWriter) bool {
	now := s.now()
	if !s.drained.IsZero() {
		s.bucket = max(0, s.bucket-now.Sub(s.drained).Seconds()*s.leak)
	}
	s.drained = now
	if s.bucket+1 > float64(s.size) {
		w.Header().Set("Retry-After", "2.0")
		writeJSON(w, http.StatusTooManyRequests, map[string]any{
			"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."})
		return false
	}
	s.bucket++
	w.Header().Set("X-Shopify-Shop-Api-Call-Limit", fmt.Sprintf("%d/%d", int(s.bucket+0.5), s.size))
	return true
}

func (s *Server) restSet(w http.ResponseWriter, body []byte) {
	if !s.take(w) {
		return
	}
	var in struct {
		LocationID      *int64 `json:"location_id"`
		InventoryItemID *int64 `json:"inventory_item_id"`
		Available       *int64 `json:"available"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": map[string]string{"inventory_level": "Required parameter missing or invalid"}})
		return
	}
	if in.LocationID == nil || in.InventoryItemID == nil || in.Available == nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": []string{"location_id, inventory_item_id and available are required"}})
		return
	}
	item, loc := strconv.FormatInt(*in.InventoryItemID, 10), strconv.FormatInt(*in.LocationID, 10)
	// REST connects the item to the location when it is not stocked there.
	s.levels[[2]string{item, loc}] = *in.Available
	writeJSON(w, http.StatusOK, map[string]any{"inventory_level": map[string]any{
		"inventory_item_id": *in.InventoryItemID, "location_id": *in.LocationID, "available": *in.Available,
		"updated_at": s.now().UTC().Format(time.RFC3339)}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
