package hubspot

import (
	"net/http"
	"time"
)

// Fault is a failure the server injects into an authenticated, admitted
// call.
type Fault int

const (
	// Fault429 answers 429 (TEN_SECONDLY_ROLLING) without applying the call.
	Fault429 Fault = iota + 1
	// Fault500, Fault502 and Fault503 answer that status without applying
	// the call.
	Fault500
	Fault502
	Fault503
	// FaultTimeout stalls without applying the call until the client gives
	// up, Faults.Stall passes (then 504), or the server closes.
	FaultTimeout
	// FaultHangup closes the connection without applying the call.
	FaultHangup
	// FaultTimeoutAfterApply and FaultHangupAfterApply apply the call, then
	// stall or hang up: the client cannot tell whether it took effect.
	FaultTimeoutAfterApply
	FaultHangupAfterApply
	// FaultWindowSpent answers 429 (TEN_SECONDLY_ROLLING) reporting no
	// calls remaining in the window, as when the account's other apps
	// spent it; Fault429 reports the calls that really remain.
	FaultWindowSpent
)

func (f Fault) String() string {
	switch f {
	case 0:
		return "none"
	case Fault429:
		return "429"
	case Fault500:
		return "500"
	case Fault502:
		return "502"
	case Fault503:
		return "503"
	case FaultTimeout:
		return "timeout"
	case FaultHangup:
		return "hangup"
	case FaultTimeoutAfterApply:
		return "timeout-after-apply"
	case FaultHangupAfterApply:
		return "hangup-after-apply"
	case FaultWindowSpent:
		return "window-spent"
	}
	return "unknown"
}

// Faults makes a fraction of the calls fail. Picks come from Options.Seed
// in arrival order, so a sequential client sees the same faults each run.
type Faults struct {
	// Rate is the fraction of calls, 0 to 1, that fail.
	Rate float64
	// Kinds are the faults picked from, uniformly. Default: Fault429,
	// Fault500, Fault502, Fault503, FaultTimeout, FaultHangup.
	Kinds []Fault
	// Stall bounds a timeout fault. Default 1 minute.
	Stall time.Duration
}

func (f Faults) withDefaults() Faults {
	if len(f.Kinds) == 0 {
		f.Kinds = []Fault{Fault429, Fault500, Fault502, Fault503, FaultTimeout, FaultHangup}
	}
	if f.Stall <= 0 {
		f.Stall = time.Minute
	}
	return f
}

// FailNext makes the next n admitted calls fail with f, ahead of any random
// fault.
func (s *Server) FailNext(f Fault, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.forced = append(s.forced, f)
	}
}

// ClearFaults drops the failures FailNext queued and not yet served.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forced = nil
}

func (s *Server) pickFault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.forced) > 0 {
		f := s.forced[0]
		s.forced = s.forced[1:]
		return f
	}
	if s.opts.Faults.Rate <= 0 || s.rng.Float64() >= s.opts.Faults.Rate {
		return 0
	}
	return s.opts.Faults.Kinds[s.rng.IntN(len(s.opts.Faults.Kinds))]
}

func (s *Server) failStatus(w http.ResponseWriter, f Fault) {
	switch f {
	case Fault429:
		s.rateLimited(w, "TEN_SECONDLY_ROLLING")
	case FaultWindowSpent:
		if s.opts.Limit > 0 {
			w.Header().Set("X-HubSpot-RateLimit-Remaining", "0")
		}
		s.rateLimited(w, "TEN_SECONDLY_ROLLING")
	case Fault500:
		s.fail(w, http.StatusInternalServerError, "INTERNAL_ERROR", "internal error", nil)
	case Fault502:
		s.fail(w, http.StatusBadGateway, "BAD_GATEWAY", "bad gateway", nil)
	default:
		s.fail(w, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "service unavailable", nil)
	}
}

func (s *Server) stall(w http.ResponseWriter, r *http.Request) {
	t := time.NewTimer(s.opts.Faults.Stall)
	defer t.Stop()
	select {
	case <-r.Context().Done():
	case <-s.quit:
	case <-t.C:
		s.fail(w, http.StatusGatewayTimeout, "TIMEOUT", "gateway timeout", nil)
	}
}

// hangup closes the connection with no response.
func hangup(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}
