package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/health"
	"github.com/cdcd-dev/cdcd/statuspage"
)

func runStatus(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	root := rootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"status"}, args...))
	if err := root.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(&errOut, "cdcd:", err)
		code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
	}
	return out.String(), errOut.String(), code
}

// statusDaemon serves the status of a monitor whose pipeline "orders"
// is degraded (its system answers only errors) when failing, on addr.
func statusDaemon(t *testing.T, addr string, failing bool) {
	t.Helper()
	reg := prometheus.NewRegistry()
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cdcd_sink_events_total"}, []string{"pipeline", "system", "result"})
	reg.MustRegister(events)
	m, err := health.New(config.DefaultHealth(), []health.Pipeline{{Name: "orders", System: "erp"}, {Name: "contacts", System: "crm"}}, reg, nil, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Minute)
	for s := 0; s <= 60; s += 5 {
		events.WithLabelValues("contacts", "crm", "delivered").Add(2)
		if failing && s > 20 {
			events.WithLabelValues("orders", "erp", "retried").Inc()
		} else {
			events.WithLabelValues("orders", "erp", "delivered").Inc()
		}
		m.Evaluate(context.Background(), t0.Add(time.Duration(s)*time.Second))
	}
	mux := http.NewServeMux()
	statuspage.New(statuspage.Tokens{Read: "rd"}, m, nil, 0, zerolog.Nop()).Mount(mux.Handle)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

// cdcd status finds the daemon and its read token in the config, prints
// every pipeline and exits 1 while one is degraded, 0 when all are ok;
// --url with CDCD_TOKEN reaches it without a config; a wrong token or no
// daemon exits 3.
func TestStatusCommand(t *testing.T) {
	addr := freeAddr(t)
	statusDaemon(t, addr, true)
	cfgPath := filepath.Join(t.TempDir(), "cdcd.yaml")
	_, port, _ := net.SplitHostPort(addr)
	if err := os.WriteFile(cfgPath, []byte("postgres: {url: 'postgres://localhost/app'}\nhttp: {listen: ':"+port+"', read_token: rd}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runStatus(t, nil, "--config", cfgPath)
	if code != 1 || !strings.Contains(out, "cdcd degraded") || !strings.Contains(errOut, "degraded") {
		t.Errorf("status: exit %d, out:\n%s\nerr: %s\nwant exit 1 and cdcd degraded", code, out, errOut)
	}
	for _, want := range []string{"pipeline  orders", "degraded", "erp answered nothing but errors", "pipeline  contacts", "ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("status table lacks %q:\n%s", want, out)
		}
	}
	out, _, code = runStatus(t, map[string]string{"CDCD_TOKEN": "rd"}, "--url", "http://"+addr, "--json", "--config", filepath.Join(t.TempDir(), "none.yaml"))
	var st statuspage.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 1 || st.State != health.Degraded || len(st.Subjects) < 4 {
		t.Errorf("status --json: exit %d, %v, state %s, %d subjects, want 1, degraded, cdcd, 2 pipelines, 2 systems", code, err, st.State, len(st.Subjects))
	}
	if _, errOut, code := runStatus(t, nil, "--url", "http://"+addr, "--token", "wrong"); code != 3 || !strings.Contains(errOut, "refused the token") {
		t.Errorf("wrong token: exit %d, %s; want 3 saying the token was refused", code, errOut)
	}
	if _, _, code := runStatus(t, nil, "--url", "http://"+freeAddr(t), "--token", "rd"); code != 3 {
		t.Errorf("no daemon: exit %d, want 3", code)
	}
	okAddr := freeAddr(t)
	statusDaemon(t, okAddr, false)
	if out, errOut, code := runStatus(t, nil, "--url", "http://"+okAddr, "--token", "rd"); code != 0 || !strings.Contains(out, "cdcd ok") {
		t.Errorf("all ok: exit %d, %s %s; want 0", code, out, errOut)
	}
}

// cdcd status --watch prints again every interval until interrupted.
func TestStatusWatch(t *testing.T) {
	addr := freeAddr(t)
	statusDaemon(t, addr, true)
	root := rootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"status", "--url", "http://" + addr, "--token", "rd", "--watch", "--interval", "100ms"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatalf("status --watch: %v", err)
	}
	if n := strings.Count(out.String(), "cdcd degraded"); n < 3 {
		t.Errorf("printed %d times in 1s at 100ms, want several:\n%s", n, out.String())
	}
}
