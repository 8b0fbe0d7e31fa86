// Package slack is an in-process double of Slack incoming webhooks: it
// answers as Slack does (200 "ok", 400 invalid_payload or no_text, 404
// no_service, 410 channel_is_archived, 429 with Retry-After) and records
// every message it accepted.
package slack

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Message is one accepted post.
type Message struct {
	Hook   string // the path after /services/
	Text   string
	Blocks json.RawMessage
	At     time.Time
}

// Response is a scripted answer.
type Response struct {
	Status     int
	Body       string
	RetryAfter int // seconds; 0 sends no header
}

// Server is the double. Hooks must be created with Hook; posts to other
// paths get 404 no_service.
type Server struct {
	srv *httptest.Server

	mu       sync.Mutex
	hooks    map[string]bool // hook -> archived
	msgs     []Message
	script   []Response
	last     map[string]time.Time
	interval time.Duration
	requests int
}

// New starts a double that stops when the test ends.
func New(t testing.TB) *Server {
	s := &Server{hooks: map[string]bool{}, last: map[string]time.Time{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.srv.Close)
	return s
}

// Hook creates a webhook and returns its URL.
func (s *Server) Hook(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks[name] = false
	return s.srv.URL + "/services/" + name
}

// Archive makes later posts to the hook answer 410 channel_is_archived.
func (s *Server) Archive(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks[name] = true
}

// MinInterval makes the double answer 429 (Retry-After: 1) to a post that
// comes sooner than d after the hook's previous accepted one.
func (s *Server) MinInterval(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.interval = d
}

// Respond queues answers for the next requests, which are then not
// recorded as messages.
func (s *Server) Respond(rs ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, rs...)
}

// Messages returns the accepted messages in arrival order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Requests returns how many requests arrived, accepted or not.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if len(s.script) > 0 {
		resp := s.script[0]
		s.script = s.script[1:]
		reply(w, resp)
		return
	}
	hook, ok := strings.CutPrefix(r.URL.Path, "/services/")
	archived, known := s.hooks[hook]
	switch {
	case r.Method != http.MethodPost:
		reply(w, Response{Status: http.StatusMethodNotAllowed, Body: "invalid_method"})
		return
	case !ok || !known:
		reply(w, Response{Status: http.StatusNotFound, Body: "no_service"})
		return
	case archived:
		reply(w, Response{Status: http.StatusGone, Body: "channel_is_archived"})
		return
	}
	now := time.Now()
	if last, seen := s.last[hook]; seen && s.interval > 0 && now.Sub(last) < s.interval {
		reply(w, Response{Status: http.StatusTooManyRequests, Body: "rate_limited", RetryAfter: 1})
		return
	}
	body, _ := io.ReadAll(r.Body)
	var m struct {
		Text   string          `json:"text"`
		Blocks json.RawMessage `json:"blocks"`
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || json.Unmarshal(body, &m) != nil {
		reply(w, Response{Status: http.StatusBadRequest, Body: "invalid_payload"})
		return
	}
	if m.Text == "" && len(m.Blocks) == 0 {
		reply(w, Response{Status: http.StatusBadRequest, Body: "no_text"})
		return
	}
	s.last[hook] = now
	s.msgs = append(s.msgs, Message{Hook: hook, Text: m.Text, Blocks: m.Blocks, At: now})
	reply(w, Response{Status: http.StatusOK, Body: "ok"})
}

func reply(w http.ResponseWriter, r Response) {
	if r.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(r.RetryAfter))
	}
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(r.Status)
	io.WriteString(w, r.Body)
}
