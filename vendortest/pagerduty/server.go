// Package pagerduty is an in-process double of the PagerDuty Events API
// v2 (POST /v2/enqueue). It validates events as PagerDuty documents them,
// answers 202 with the dedup key, 400 for an invalid event, 429 without
// Retry-After past a routing key's rate (Limit), and keeps the state of
// each alert by dedup key.
package pagerduty

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// Event is one accepted event.
type Event struct {
	RoutingKey  string   `json:"routing_key"`
	EventAction string   `json:"event_action"`
	DedupKey    string   `json:"dedup_key"`
	Payload     *Payload `json:"payload"`
}

// Payload is a trigger's payload.
type Payload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp"`
	Component     string         `json:"component"`
	Group         string         `json:"group"`
	Class         string         `json:"class"`
	CustomDetails map[string]any `json:"custom_details"`
}

// Alert states.
const (
	Triggered    = "triggered"
	Acknowledged = "acknowledged"
	Resolved     = "resolved"
)

// Response is a scripted answer.
type Response struct {
	Status     int
	Body       string
	RetryAfter int
}

// Server is the double.
type Server struct {
	srv *httptest.Server

	mu       sync.Mutex
	events   []Event
	alerts   map[string]string // dedup key -> state
	script   []Response
	requests int
	limit    int                    // events per routing key in any minute; 0: none
	seen     map[string][]time.Time // routing key -> admission times in the last minute
}

// New starts a double that stops when the test ends.
func New(t testing.TB) *Server {
	s := &Server{alerts: map[string]string{}, seen: map[string][]time.Time{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the enqueue endpoint.
func (s *Server) URL() string { return s.srv.URL + "/v2/enqueue" }

// Respond queues answers for the next requests, which are then not
// accepted.
func (s *Server) Respond(rs ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, rs...)
}

// Limit makes the double answer 429, with no Retry-After header as
// PagerDuty documents, to events past n per routing key in the last
// minute. Refused events do not count.
func (s *Server) Limit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit = n
}

// Requests is how many requests arrived, accepted or not.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Events returns the accepted events in arrival order.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// Alert returns the state of the alert with the dedup key, "" if none.
func (s *Server) Alert(dedupKey string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.alerts[dedupKey]
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if len(s.script) > 0 {
		resp := s.script[0]
		s.script = s.script[1:]
		if resp.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(resp.RetryAfter))
		}
		w.WriteHeader(resp.Status)
		io.WriteString(w, resp.Body)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v2/enqueue" {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if len(body) > 512<<10 {
		invalid(w, "Event object is too large")
		return
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		invalid(w, "Event object is invalid JSON")
		return
	}
	if msg := check(&ev); msg != "" {
		invalid(w, msg)
		return
	}
	if s.throttled(ev.RoutingKey, time.Now()) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"status":"throttle event","message":"Requests for this service are arriving too quickly. Please retry later."}`)
		return
	}
	if ev.DedupKey == "" {
		b := make([]byte, 16)
		rand.Read(b)
		ev.DedupKey = hex.EncodeToString(b)
	}
	switch ev.EventAction {
	case "trigger":
		s.alerts[ev.DedupKey] = Triggered
	case "acknowledge":
		if s.alerts[ev.DedupKey] == Triggered {
			s.alerts[ev.DedupKey] = Acknowledged
		}
	case "resolve":
		if st := s.alerts[ev.DedupKey]; st == Triggered || st == Acknowledged {
			s.alerts[ev.DedupKey] = Resolved
		}
	}
	s.events = append(s.events, ev)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(map[string]string{"status": "success", "message": "Event processed", "dedup_key": ev.DedupKey})
}

// throttled reports whether an event for key arriving at now is over the
// limit, and admits it otherwise. The caller holds s.mu.
func (s *Server) throttled(key string, now time.Time) bool {
	if s.limit <= 0 {
		return false
	}
	log := s.seen[key]
	for len(log) > 0 && now.Sub(log[0]) >= time.Minute {
		log = log[1:]
	}
	if len(log) >= s.limit {
		s.seen[key] = log
		return true
	}
	s.seen[key] = append(log, now)
	return false
}

// check returns why PagerDuty would refuse ev, or "".
func check(ev *Event) string {
	switch {
	case len(ev.RoutingKey) != 32:
		return "'routing_key' is invalid"
	case ev.EventAction != "trigger" && ev.EventAction != "acknowledge" && ev.EventAction != "resolve":
		return "'event_action' is invalid"
	case utf8.RuneCountInString(ev.DedupKey) > 255:
		return "'dedup_key' must be 255 characters or fewer"
	case ev.EventAction != "trigger" && ev.DedupKey == "":
		return "'dedup_key' is required to acknowledge or resolve"
	case ev.EventAction != "trigger":
		return ""
	case ev.Payload == nil:
		return "'payload' is missing"
	case ev.Payload.Summary == "" || utf8.RuneCountInString(ev.Payload.Summary) > 1024:
		return "'payload.summary' is missing or longer than 1024 characters"
	case ev.Payload.Source == "":
		return "'payload.source' is missing"
	}
	switch ev.Payload.Severity {
	case "critical", "error", "warning", "info":
		return ""
	}
	return "'payload.severity' is invalid"
}

func invalid(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": []string{msg}})
}
