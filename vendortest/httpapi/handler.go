package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := Request{
		Method: r.Method, Path: r.URL.Path, EscapedPath: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery,
		Header: r.Header.Clone(), Body: body,
		IdempotencyKey: r.Header.Get(s.opts.IdempotencyHeader),
	}
	if msg := s.checkAuth(r, body); msg != "" {
		rec.Status = http.StatusUnauthorized
		s.log(rec)
		writeJSON(w, http.StatusUnauthorized, nil, map[string]any{"message": msg})
		return
	}

	s.mu.Lock()
	fault := s.pickFault()
	hang, retryAfter := s.opts.Faults.Hang, s.opts.Faults.RetryAfter
	switch fault {
	case "scripted":
		sc := s.script[0]
		s.script = s.script[1:]
		rec.Status, rec.Fault = sc.status, fault
		s.requests = append(s.requests, rec)
		s.mu.Unlock()
		for k, v := range sc.header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(sc.status)
		io.WriteString(w, sc.body)
		return
	case "429", "5xx":
		status := http.StatusTooManyRequests
		if fault == "5xx" {
			status = http.StatusServiceUnavailable
		}
		rec.Status, rec.Fault = status, fault
		s.requests = append(s.requests, rec)
		s.mu.Unlock()
		h := http.Header{"Retry-After": {retryAfter}}
		writeJSON(w, status, h, map[string]any{"message": "injected fault"})
		return
	}
	var (
		status   int
		resp     []byte
		replayed bool
		header   http.Header
	)
	if r.Method == http.MethodGet && s.collection(rec.EscapedPath) {
		status, header, resp = s.list(rec.EscapedPath, r.URL.Query())
	} else {
		status, resp, replayed = s.handle(r.Method, rec.EscapedPath, body, rec.IdempotencyKey)
	}
	rec.Status, rec.Replayed, rec.Fault = status, replayed, fault
	if fault == "timeout" {
		rec.Status = 0
	}
	s.requests = append(s.requests, rec)
	s.mu.Unlock()

	if fault == "timeout" {
		t := time.NewTimer(hang)
		defer t.Stop()
		select {
		case <-r.Context().Done():
		case <-t.C:
		}
		return
	}
	if replayed {
		header = http.Header{"Idempotent-Replayed": {"true"}}
	}
	writeRaw(w, status, header, resp)
}

func (s *Server) log(rec Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, rec)
}

// SetFaults replaces the fault injection settings (the random stream
// continues).
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.RetryAfter == "" {
		f.RetryAfter = "1"
	}
	if f.Hang == 0 {
		f.Hang = 10 * time.Second
	}
	s.opts.Faults = f
}

// pickFault draws the fault of one request; s.mu is held.
func (s *Server) pickFault() string {
	if len(s.script) > 0 {
		return "scripted"
	}
	f := s.opts.Faults
	if f.Rate429+f.Rate5xx+f.Timeout == 0 {
		return ""
	}
	switch x := s.rng.Float64(); {
	case x < f.Rate429:
		return "429"
	case x < f.Rate429+f.Rate5xx:
		return "5xx"
	case x < f.Rate429+f.Rate5xx+f.Timeout:
		return "timeout"
	}
	return ""
}

// handle applies a request, or replays the answer saved for its
// idempotency key; s.mu is held.
func (s *Server) handle(method, path string, body []byte, key string) (int, []byte, bool) {
	mutating := method != http.MethodGet && method != http.MethodHead
	var fp string
	if mutating && key != "" {
		sum := sha256.Sum256(append([]byte(method+" "+path+"\n"), body...))
		fp = hex.EncodeToString(sum[:])
		if sv, ok := s.idem[key]; ok {
			if sv.fingerprint != fp {
				return http.StatusUnprocessableEntity, errorBody("idempotency key reused with a different request"), false
			}
			return sv.status, sv.body, true
		}
	}
	status, resp := s.apply(method, path, body)
	if mutating && key != "" {
		s.idem[key] = &saved{fingerprint: fp, status: status, body: resp}
	}
	return status, resp, false
}

// apply performs one request on the store; s.mu is held.
func (s *Server) apply(method, path string, body []byte) (int, []byte) {
	path = strings.TrimSuffix(path, "/")
	var in map[string]any
	if method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		if err := json.Unmarshal(body, &in); err != nil || in == nil {
			return http.StatusBadRequest, errorBody("body is not a JSON object")
		}
	}
	cur, exists := s.resources[path]
	switch method {
	case http.MethodGet:
		if !exists {
			return http.StatusNotFound, errorBody("not found")
		}
		return http.StatusOK, s.wrap(cur)
	case http.MethodPost:
		s.created++
		id := strconv.Itoa(s.created)
		if s.opts.NewID != nil {
			id = s.opts.NewID(s.created)
		}
		in[s.opts.IDField] = id
		s.resources[path+"/"+url.PathEscape(id)] = in
		s.effects++
		return http.StatusCreated, s.wrap(in)
	case http.MethodPut:
		if _, ok := in[s.opts.IDField]; !ok {
			id, err := url.PathUnescape(path[strings.LastIndexByte(path, '/')+1:])
			if err != nil {
				return http.StatusBadRequest, errorBody("malformed path")
			}
			in[s.opts.IDField] = id
		}
		s.resources[path] = in
		s.effects++
		if exists {
			return http.StatusOK, s.wrap(in)
		}
		return http.StatusCreated, s.wrap(in)
	case http.MethodPatch:
		if !exists {
			return http.StatusNotFound, errorBody("not found")
		}
		maps.Copy(cur, in)
		s.effects++
		return http.StatusOK, s.wrap(cur)
	case http.MethodDelete:
		if !exists {
			return http.StatusNotFound, errorBody("not found")
		}
		delete(s.resources, path)
		s.effects++
		return http.StatusNoContent, nil
	}
	return http.StatusMethodNotAllowed, errorBody("method not allowed")
}

// checkAuth returns why r is not authenticated, or "".
func (s *Server) checkAuth(r *http.Request, body []byte) string {
	a := s.opts.Auth
	if a.Bearer != "" && r.Header.Get("Authorization") != "Bearer "+a.Bearer {
		return "invalid bearer token"
	}
	if a.Username != "" {
		u, p, ok := r.BasicAuth()
		if !ok || u != a.Username || p != a.Password {
			return "invalid basic credentials"
		}
	}
	if a.HMACSecret == "" {
		return ""
	}
	header := a.HMACHeader
	if header == "" {
		header = "X-Signature"
	}
	mac := hmac.New(sha256.New, []byte(a.HMACSecret))
	if a.TimestampHeader != "" {
		ts := r.Header.Get(a.TimestampHeader)
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return "missing or malformed timestamp"
		}
		if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
			return "timestamp outside tolerance"
		}
		mac.Write([]byte(ts + "."))
	}
	mac.Write(body)
	want := mac.Sum(nil)
	got, ok := strings.CutPrefix(r.Header.Get(header), a.HMACPrefix)
	if !ok {
		return "missing signature"
	}
	var dec []byte
	var err error
	if a.HMACEncoding == "base64" {
		dec, err = base64.StdEncoding.DecodeString(got)
	} else {
		dec, err = hex.DecodeString(got)
	}
	if err != nil || !hmac.Equal(dec, want) {
		return "invalid signature"
	}
	return ""
}

func (s *Server) wrap(res map[string]any) []byte {
	var v any = res
	if s.opts.Envelope != "" {
		v = map[string]any{s.opts.Envelope: res}
	}
	b, _ := json.Marshal(v)
	return b
}

func errorBody(msg string) []byte {
	b, _ := json.Marshal(map[string]any{"message": msg})
	return b
}

func writeJSON(w http.ResponseWriter, status int, h http.Header, v any) {
	b, _ := json.Marshal(v)
	writeRaw(w, status, h, b)
}

func writeRaw(w http.ResponseWriter, status int, h http.Header, body []byte) {
	for k, v := range h {
		w.Header()[k] = v
	}
	if body != nil {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	w.Write(body)
}

func clone(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	b, _ := json.Marshal(m)
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}
