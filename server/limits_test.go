package server

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// serve runs a Server with lim on a loopback port until the test ends and
// returns its address.
func serve(t *testing.T, lim Limits) string {
	t.Helper()
	s := New("", lim, zerolog.New(zerolog.NewTestWriter(t)), prometheus.NewRegistry())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return l.Addr().String()
}

// dial opens a raw connection, closed when the test ends.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// healthz sends GET /healthz on c, keeping the connection alive, and
// returns the status code; an error when the connection is not served.
func healthz(c net.Conn, r *bufio.Reader) (int, error) {
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: cdcd\r\n\r\n"); err != nil {
		return 0, err
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// closedWithin reports whether the server closes c within d, reading
// nothing from it.
func closedWithin(c net.Conn, r *bufio.Reader, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := r.ReadByte()
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

// TestIdleConnectionsClosed: kept-alive connections that send no next
// request, and connections that never send one, are closed by the server
// once the idle and read timeouts pass.
func TestIdleConnectionsClosed(t *testing.T) {
	t.Parallel()
	addr := serve(t, Limits{ReadTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	type held struct {
		c net.Conn
		r *bufio.Reader
	}
	var conns []held
	for i := range 40 {
		c := dial(t, addr)
		h := held{c, bufio.NewReader(c)}
		if i%2 == 0 { // kept alive after one request
			if code, err := healthz(h.c, h.r); err != nil || code != http.StatusOK {
				t.Fatalf("healthz: %d %v", code, err)
			}
		}
		conns = append(conns, h)
	}
	start := time.Now()
	for i, h := range conns {
		if !closedWithin(h.c, h.r, 3*time.Second) {
			t.Errorf("connection %d still open %s after it went idle", i, time.Since(start).Round(time.Millisecond))
		}
	}
	t.Logf("40 idle connections closed after %s", time.Since(start).Round(time.Millisecond))
}

// TestConnectionsBeyondCapNotServed: with max connections open, one more
// is closed unanswered; once one of them closes, a new one is served.
func TestConnectionsBeyondCapNotServed(t *testing.T) {
	t.Parallel()
	addr := serve(t, Limits{MaxConnections: 3})
	var open []net.Conn
	for range 3 {
		c := dial(t, addr)
		if code, err := healthz(c, bufio.NewReader(c)); err != nil || code != http.StatusOK {
			t.Fatalf("healthz within the cap: %d %v", code, err)
		}
		open = append(open, c)
	}
	extra := dial(t, addr)
	if code, err := healthz(extra, bufio.NewReader(extra)); err == nil {
		t.Fatalf("a fourth connection with a cap of 3 was answered %d", code)
	}

	open[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := dial(t, addr)
		code, err := healthz(c, bufio.NewReader(c))
		if err == nil && code == http.StatusOK {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("no connection served after one of the capped ones closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range open[1:] {
		if code, err := healthz(c, bufio.NewReader(c)); err != nil || code != http.StatusOK {
			t.Fatalf("a connection within the cap stopped being served: %d %v", code, err)
		}
	}
}
