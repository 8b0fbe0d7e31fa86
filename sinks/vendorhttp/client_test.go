package vendorhttp

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// Concurrent calls reuse their connections: 16 callers making 100 calls
// each open about one connection each (a call finding none idle for a
// moment dials one more), not a new one for many calls as Go's default of
// two idle connections a host does (around a hundred here).
func TestClientReusesConnections(t *testing.T) {
	var opened atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "{}")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := Client(0)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 100 {
				resp, err := c.Post(srv.URL, "application/json", nil)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	t.Logf("%d connections opened", opened.Load())
	if n := opened.Load(); n > 32 {
		t.Errorf("%d connections opened for 1,600 calls by 16 callers, want at most 32", n)
	}
}

// A redirect is answered to the caller, not followed.
func TestClientDoesNotFollowRedirects(t *testing.T) {
	srv := httptest.NewServer(http.RedirectHandler("/elsewhere", http.StatusFound))
	defer srv.Close()
	resp, err := Client(0).Post(srv.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("status %d, want the 302 itself", resp.StatusCode)
	}
}
