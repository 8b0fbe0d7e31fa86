package outbound

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

// slowProxy stands in front of the vendor double: it holds every call for
// a while before forwarding it, and counts the calls in flight, so a test
// can kill cdcd while writes are on their way.
type slowProxy struct {
	srv      *httptest.Server
	inflight atomic.Int32
}

func newSlowProxy(t *testing.T, target string, latency time.Duration) *slowProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	p := &slowProxy{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.inflight.Add(1)
		defer p.inflight.Add(-1)
		hold := time.NewTimer(latency)
		defer hold.Stop()
		select {
		case <-r.Context().Done():
			return // the caller is gone
		case <-hold.C:
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *slowProxy) URL() string { return p.srv.URL }

// busy reports whether a call is in flight within timeout.
func (p *slowProxy) busy(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for p.inflight.Load() == 0 {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}
