package inbound

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/e2e/e2etest"
	"github.com/cdcd-dev/cdcd/vendortest/httpapi"
)

// TestDirectoryImportThenTwoWay is deploy/examples/employee-directory.yaml
// against a double of the HR system's REST API that fails a fifth of its
// calls: every employee is imported through the http list (cursor
// pagination) with nothing written back, and imported again through the
// admin API without a change; then an edit of the app reaches
// the HR system by the id the import linked, and a change the HR system
// announces by webhook reaches the table and is not written back.
func TestDirectoryImportThenTwoWay(t *testing.T) {
	t.Parallel()
	const secret = "hr-webhook-secret"
	name, url := newDB(t)
	execSQL(t, url, `CREATE TABLE employees (
		id serial PRIMARY KEY, employee_number text NOT NULL UNIQUE, email text NOT NULL UNIQUE,
		first_name text, title text, phone text)`)
	hr := httpapi.New(t, httpapi.Options{Paging: httpapi.Paging{Style: "cursor", MaxLimit: 100},
		Faults: httpapi.Faults{Seed: 9, Rate429: 0.1, Rate5xx: 0.1, RetryAfter: "0"}})
	const n = 250
	base := time.Date(2026, 2, 1, 8, 0, 0, 0, time.UTC)
	for i := range n {
		hr.Put(fmt.Sprintf("/api/v1/employees/E%04d", i), map[string]any{"id": fmt.Sprintf("E%04d", i),
			"employee_number": strconv.Itoa(1000 + i), "email": fmt.Sprintf("e%d@example.com", i),
			"first_name": []string{"Ada", "Zoë", "O'Neil"}[i%3], "title": "Engineer",
			"updated_at": base.Add(time.Duration(i) * time.Second).Format(time.RFC3339)})
	}
	listen := e2etest.FreeAddr(t)
	config := fmt.Sprintf(`postgres:
  url: %q
  slot: %[2]s
  publication: %[2]s
  tables: [public.employees]
  status_interval: 100ms
http:
  listen: %q
  admin_token: directory-admin
systems:
  hr:
    type: http
    update: {method: PATCH, url: "%[4]s/api/v1/employees/{{.ExternalID}}"}
    rate: {requests: 200, per: 1s}
    list:
      url: "%[4]s/api/v1/{{.Object}}?limit=100"
      pagination: cursor
      param: cursor
      next_path: meta.next_cursor
      has_more_path: meta.has_more
      records_path: data
      updated_at_path: updated_at
    webhook:
      verify: hmac
      secret: %[5]s
      header: X-HR-Signature
      parse: json
      json:
        table: employees
        id: employee.id
        delivery_id: event_id
        occurred_at: occurred_at
        fields:
          - {name: employee_number, path: employee.employee_number}
          - {name: email, path: employee.email}
          - {name: first_name, path: employee.first_name}
          - {name: title, path: employee.title}
pipelines:
  - name: hr-to-employees
    from: hr
    object: employees
    to: public.employees
    map: {employee_number: employee_number, email: email, first_name: first_name, title: title}
    match: [employee_number]
  - name: employees-to-hr
    from: public.employees
    to: hr
    object: employees
    ops: [update]
    map: {phone: phone, title: title}
    backoff: {min: 50ms, max: 500ms}
`, url, name, listen, hr.URL, secret)
	path := t.TempDir() + "/cdcd.yaml"
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, config, listen)
	if out, err := exec.Command(cdcdBin, "import", "-c", path, "hr-to-employees").CombinedOutput(); err != nil {
		t.Fatalf("cdcd import: %v: %s", err, out)
	}
	poll(t, settle, func() error {
		if c := query(t, url, `SELECT count(*)::text FROM employees`); c != strconv.Itoa(n) {
			return fmt.Errorf("%s employees, want %d", c, n)
		}
		return nil
	})
	if got := query(t, url, `SELECT first_name FROM employees WHERE employee_number = '1002'`); got != "O'Neil" {
		t.Fatalf("employee 1002 has first name %q", got)
	}
	// Imported again, through the admin API: the same records change
	// nothing and go nowhere.
	api, _ := http.NewRequest(http.MethodPost, "http://"+listen+"/api/jobs", strings.NewReader(`{"kind": "import", "pipeline": "hr-to-employees"}`))
	api.Header.Set("Authorization", "Bearer directory-admin")
	status, msg := send(t, api)
	var job struct{ ID int64 }
	if status != http.StatusCreated || json.Unmarshal([]byte(msg), &job) != nil || job.ID == 0 {
		t.Fatalf("POST /api/jobs answered %d %s", status, msg)
	}
	poll(t, settle, func() error {
		if s := query(t, url, `SELECT status FROM cdcd.jobs WHERE id = $1`, job.ID); s != "done" {
			return fmt.Errorf("job %d is %q", job.ID, s)
		}
		return nil
	})
	if c := query(t, url, `SELECT count(*)::text FROM employees`); c != strconv.Itoa(n) {
		t.Fatalf("%s employees after the second import, want %d", c, n)
	}
	patches := func() []httpapi.Request {
		var out []httpapi.Request
		for _, r := range hr.Requests() {
			if r.Method == http.MethodPatch && r.Status < 300 && r.Status != 0 {
				out = append(out, r)
			}
		}
		return out
	}

	// The app's edit goes to the HR system by the imported link.
	execSQL(t, url, `UPDATE employees SET phone = '+41 44 000 00 07' WHERE employee_number = '1007'`)
	poll(t, settle, func() error {
		if r, _ := hr.Resource("/api/v1/employees/E0007"); r["phone"] != "+41 44 000 00 07" {
			return fmt.Errorf("HR holds phone %v for E0007", r["phone"])
		}
		return nil
	})

	// The HR system's change arrives by webhook and is not sent back.
	body, _ := json.Marshal(map[string]any{"event_id": "ev-1", "occurred_at": time.Now().UTC().Format(time.RFC3339Nano),
		"employee": map[string]any{"id": "E0010", "employee_number": "1010", "email": "e10@example.com", "first_name": "Ada", "title": "Staff Engineer"}})
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+listen+"/webhooks/hr", bytes.NewReader(body))
	req.Header.Set("X-HR-Signature", hex.EncodeToString(m.Sum(nil)))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	if status, msg := send(t, req); status != http.StatusOK {
		t.Fatalf("webhook answered %d %s", status, msg)
	}
	poll(t, settle, func() error {
		if got := query(t, url, `SELECT title FROM employees WHERE employee_number = '1010'`); got != "Staff Engineer" {
			return fmt.Errorf("employee 1010 has title %q", got)
		}
		return nil
	})
	// A later edit of the app passes every change before it.
	execSQL(t, url, `UPDATE employees SET phone = '+41 44 000 00 11' WHERE employee_number = '1011'`)
	poll(t, settle, func() error {
		if r, _ := hr.Resource("/api/v1/employees/E0011"); r["phone"] != "+41 44 000 00 11" {
			return fmt.Errorf("HR holds phone %v for E0011", r["phone"])
		}
		return nil
	})
	var paths []string
	for _, r := range patches() {
		paths = append(paths, r.Path)
	}
	if len(paths) != 2 || !strings.HasSuffix(paths[0], "/E0007") || !strings.HasSuffix(paths[1], "/E0011") {
		t.Fatalf("HR received PATCHes %v; want only the app's two edits (the import and the webhook were echoed back)", paths)
	}
}
