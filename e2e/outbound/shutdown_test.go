package outbound

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

// Gate modes: pass calls to the double, answer 503, or hold them until the
// caller gives up.
const (
	gatePass int32 = iota
	gateFail
	gateHang
)

// gate stands in front of the vendor double; a test switches its mode.
type gate struct {
	srv      *httptest.Server
	mode     atomic.Int32
	calls    atomic.Int32
	inflight atomic.Int32
}

func newGate(t *testing.T, target string) *gate {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	g := &gate{}
	closing := make(chan struct{})
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.calls.Add(1)
		g.inflight.Add(1)
		defer g.inflight.Add(-1)
		switch g.mode.Load() {
		case gateFail:
			http.Error(w, `{"status":"error","category":"SERVICE_UNAVAILABLE"}`, http.StatusServiceUnavailable)
		case gateHang:
			// With the body read, the server notices the caller leaving.
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-closing:
			}
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(func() {
		close(closing)
		g.srv.Close()
	})
	return g
}

// TestSigtermStopsPromptly: SIGTERM ends cdcd within 10s, exit code 0,
// whatever it is doing: records in retry against a failing vendor, on
// either bus (in process, the dead-letter replay loop waits for the
// pipeline meanwhile), a vendor that hangs, a dead-letter replay in
// flight. Once restarted against a healthy vendor, every committed change
// is delivered, and the dead letters whose replay was interrupted are
// replayed.
func TestSigtermStopsPromptly(t *testing.T) {
	const refused = "evangelist"
	retrying := func(t *testing.T, d *deployment, p *proc, g *gate, w *workload) {
		g.mode.Store(gateFail)
		w.insert(1, 20, "lead")
		// Past the replay loop's first tick (10s), which then waits for
		// the pipeline that retries.
		began := time.Now()
		cdctest.Eventually(t, 30*time.Second, "retries past the first replay tick", func() bool {
			return g.calls.Load() >= 5 && time.Since(began) > 11*time.Second
		})
	}
	for _, tc := range []struct {
		name  string
		kafka bool
		setup func(t *testing.T, d *deployment, p *proc, g *gate, w *workload)
	}{
		{"records-in-retry", false, retrying},
		{"records-in-retry-kafka", true, retrying},
		{"vendor-hanging", false, func(t *testing.T, d *deployment, p *proc, g *gate, w *workload) {
			g.mode.Store(gateHang)
			w.insert(1, 20, "lead")
			began := time.Now()
			cdctest.Eventually(t, 30*time.Second, "a call hanging past the first replay tick", func() bool {
				return g.inflight.Load() > 0 && time.Since(began) > 11*time.Second
			})
		}},
		{"replay-running", false, func(t *testing.T, d *deployment, p *proc, g *gate, w *workload) {
			w.insert(1, 5, refused)
			cdctest.Eventually(t, 20*time.Second, "5 dead letters", func() bool {
				var letters []letter
				mustJSON(t, d.cli("dlq", "list", "--pipeline", pipelineName, "--json"), &letters)
				return len(letters) == 5
			})
			g.mode.Store(gateHang)
			d.hub.SetOptions("contacts", "lifecyclestage", "lead", refused)
			if out := d.cli("dlq", "replay", "--pipeline", pipelineName, "--all"); !strings.Contains(out, "marked 5 dead letters") {
				t.Fatalf("dlq replay printed %q", out)
			}
			cdctest.Eventually(t, 30*time.Second, "the replay to call the vendor", func() bool { return g.inflight.Load() > 0 })
			w.insert(6, 20, "lead")
			cdctest.Eventually(t, 10*time.Second, "new changes queued behind the replay", func() bool { return queued(p) > 0 })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := newDeployment(t, tc.kafka, hubspot.Options{})
			d.hub.SetOptions("contacts", "lifecyclestage", "lead")
			d.attempts, d.timeout = 1000, time.Minute
			g := newGate(t, d.hub.URL())
			d.vendor = g.srv.URL
			p := d.start("all")
			w := newWorkload(t, d.url)
			tc.setup(t, d, p, g, w)

			took, code, ok := p.Terminate(10 * time.Second)
			if !ok {
				t.Fatalf("cdcd still running %s after SIGTERM", took.Round(time.Millisecond))
			}
			if code != 0 {
				t.Fatalf("cdcd exited with code %d after SIGTERM", code)
			}
			t.Logf("cdcd stopped %s after SIGTERM", took.Round(time.Millisecond))

			g.mode.Store(gatePass)
			p.restart()
			waitConverged(t, d.url, nil, d.hub, 60*time.Second)
			checkCreatedOnce(t, d.hub, w.ids)
		})
	}
}

// queued is the depth of the in-process bus queue that p reports on
// /metrics; 0 when it cannot tell.
func queued(p *proc) int {
	resp, err := http.Get("http://" + p.listen + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "cdcd_bus_queue_depth{") {
			n, _ := strconv.Atoi(line[strings.LastIndexByte(line, ' ')+1:])
			return n
		}
	}
	return 0
}
