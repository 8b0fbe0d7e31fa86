package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/store"
)

// conflictFixture is a database with contact 1 held by an escalated
// conflict on firstname (local Ann, base Ada, remote Bea).
func conflictFixture(t *testing.T) (*store.Store, string) {
	t.Helper()
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	s, err := store.Open(context.Background(), url, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	pg.Exec(t, "app", `CREATE TABLE contacts (id int PRIMARY KEY, email text, first_name text);
		INSERT INTO contacts VALUES (1, 'a@x', 'Ann');
		INSERT INTO cdcd.conflicts (pipeline, system, object, external_id, local_table, local_key, fields, columns, base, local, remote, rule, status)
		VALUES ('hubspot-to-contacts', 'hubspot', 'contacts', '512', 'public.contacts', '{"id": 1}', '{firstname}',
			'{"firstname": "first_name"}', '{"firstname": "Ada", "email": "a@x"}', '{"firstname": "Ann", "email": "a@x"}',
			'{"firstname": "Bea"}', 'pending', 'escalated')`)
	return s, url
}

func firstName(t *testing.T, url string) string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n string
	if err := conn.QueryRow(context.Background(), `SELECT first_name FROM contacts WHERE id = 1`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConflictsAPI(t *testing.T) {
	s, url := conflictFixture(t)
	mux := http.NewServeMux()
	(&conflictsAPI{store: s, log: zerolog.Nop()}).mount(func(p string, h http.Handler) { mux.Handle(p, adminOnly("admin-secret", h)) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	call := func(method, path, token, body string) (int, map[string]any, []any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		var obj map[string]any
		var list []any
		if json.Unmarshal(buf.Bytes(), &obj) != nil {
			_ = json.Unmarshal(buf.Bytes(), &list)
		}
		return resp.StatusCode, obj, list
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
	if code != 200 || obj["status"] != "resolved" || obj["resolved_by"] != "alice" || firstName(t, url) != "Bea" {
		t.Fatalf("resolve: %d %v, local %s", code, obj, firstName(t, url))
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
