package daemon

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/jobs"
	"github.com/cdcd-dev/cdcd/sources/imports"
	"github.com/cdcd-dev/cdcd/store/storetest"
)

// TestJobsAPIRefusesBadRequests: POST /api/jobs without the admin token,
// with a wrong one, or with a body that is not exactly one request it
// can honour answers 4xx with a reason, and queues nothing; a good one
// queues its job.
func TestJobsAPIRefusesBadRequests(t *testing.T) {
	s, _ := storetest.EscalatedConflict(t)
	js := jobs.NewStore(s.Pool())
	d := &Daemon{cfg: &config.Config{}, imports: map[string]imports.Source{"crm-to-contacts": {System: "crm", Object: "contacts"}}}
	mux := http.NewServeMux()
	(&jobsAPI{cfg: d.cfg, store: js, log: zerolog.Nop(), start: d.importSpec}).mount(func(p string, h http.Handler) { mux.Handle(p, adminOnly("admin-secret", h)) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	post := func(token, body string) (int, string) {
		t.Helper()
		code, b := adminCall(t, "POST", srv.URL+"/api/jobs", token, body)
		return code, string(b)
	}
	good := `{"kind":"import","pipeline":"crm-to-contacts"}`
	for _, tc := range []struct {
		name, token, body string
		code              int
		reason            string
	}{
		{"no token", "", good, 401, "bearer token"},
		{"wrong token", "admin-secre", good, 401, "bearer token"},
		{"empty body", "admin-secret", "", 400, "body"},
		{"not JSON", "admin-secret", "kind=import", 400, "body"},
		{"unknown key", "admin-secret", `{"kind":"import","pipeline":"crm-to-contacts","tabel":"x"}`, 400, "tabel"},
		{"trailing text", "admin-secret", good + `{"kind":"import","pipeline":"other"}`, 400, "body"},
		{"unknown kind", "admin-secret", `{"kind":"reindex","pipeline":"crm-to-contacts"}`, 400, "reindex"},
		{"not importable", "admin-secret", `{"kind":"import","pipeline":"nope"}`, 400, "nope"},
		{"import with a where", "admin-secret", `{"kind":"import","pipeline":"crm-to-contacts","where":"id < 10"}`, 400, "where"},
	} {
		code, body := post(tc.token, tc.body)
		if code != tc.code || !strings.Contains(body, tc.reason) {
			t.Errorf("%s: %d %s; want %d naming %q", tc.name, code, body, tc.code, tc.reason)
		}
	}
	if list, err := js.List(context.Background(), jobs.Filter{}); err != nil || len(list) != 0 {
		t.Fatalf("refused requests queued %d jobs (%v)", len(list), err)
	}
	if code, body := post("admin-secret", good); code != 201 || !strings.Contains(body, `"status": "queued"`) {
		t.Fatalf("good request: %d %s", code, body)
	}
}
