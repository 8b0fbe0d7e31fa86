package daemon

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/store/storetest"
	"github.com/rs/zerolog"
)

func TestConflictsAPI(t *testing.T) {
	s, url := storetest.EscalatedConflict(t)
	mux := http.NewServeMux()
	(&conflictsAPI{store: s, log: zerolog.Nop()}).mount(func(p string, h http.Handler) { mux.Handle(p, adminOnly("admin-secret", h)) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	call := func(method, path, token, body string) (int, map[string]any, []any) {
		t.Helper()
		code, b := adminCall(t, method, srv.URL+path, token, body)
		var obj map[string]any
		var list []any
		if json.Unmarshal(b, &obj) != nil {
			_ = json.Unmarshal(b, &list)
		}
		return code, obj, list
	}
	if code, _, _ := call("GET", "/api/conflicts", "", ""); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	if code, _, _ := call("GET", "/api/conflicts", "wrong", ""); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	if code, _, list := call("GET", "/api/conflicts?status=escalated", "admin-secret", ""); code != 200 || len(list) != 1 {
		t.Fatalf("list: %d %v", code, list)
	}
	if code, obj, _ := call("GET", "/api/conflicts?status=bogus", "admin-secret", ""); code != 400 || obj["error"] == nil {
		t.Fatalf("bad status: %d %v", code, obj)
	}
	if code, obj, _ := call("GET", "/api/conflicts/1", "admin-secret", ""); code != 200 || obj["status"] != "escalated" {
		t.Fatalf("get: %d %v", code, obj)
	}
	if code, _, _ := call("GET", "/api/conflicts/7", "admin-secret", ""); code != 404 {
		t.Fatalf("missing: %d", code)
	}
	if code, _, _ := call("POST", "/api/conflicts/1/resolve", "admin-secret", `{"choice":"merged","values":{}}`); code != 400 {
		t.Fatalf("merged without values: %d", code)
	}
	if code, _, _ := call("POST", "/api/conflicts/1/resolve", "admin-secret", `{"choice":"local","extra":1}`); code != 400 {
		t.Fatalf("unknown key: %d", code)
	}
	code, obj, _ := call("POST", "/api/conflicts/1/resolve", "admin-secret", `{"choice":"remote","by":"alice"}`)
	if code != 200 || obj["status"] != "resolved" || obj["resolved_by"] != "alice" || storetest.FirstName(t, url) != "Bea" {
		t.Fatalf("resolve: %d %v, local %s", code, obj, storetest.FirstName(t, url))
	}
	if code, _, _ := call("POST", "/api/conflicts/1/resolve", "admin-secret", `{"choice":"remote"}`); code != 200 {
		t.Fatalf("the same resolution again: %d", code)
	}
	if code, _, _ := call("POST", "/api/conflicts/1/resolve", "admin-secret", `{"choice":"local"}`); code != 409 {
		t.Fatalf("another resolution: %d", code)
	}
	off := http.NewServeMux()
	(&conflictsAPI{store: s, log: zerolog.Nop()}).mount(func(p string, h http.Handler) { off.Handle(p, adminOnly("", h)) })
	rec := httptest.NewRecorder()
	off.ServeHTTP(rec, httptest.NewRequest("GET", "/api/conflicts", nil))
	if rec.Code != 403 || !strings.Contains(rec.Body.String(), "set http.admin_token") {
		t.Fatalf("without a token configured: %d %s", rec.Code, rec.Body)
	}
}

// adminCall sends body to url with the admin token, if not empty, and
// returns the answer's status and body.
func adminCall(t *testing.T, method, url, token, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}
