package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// fileRows reads the events a file system wrote: op and after.id of each.
func fileRows(t *testing.T, path string) (reads map[int]int, lines int) {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return map[int]int{}, 0
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	reads = map[int]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Op    string `json:"op"`
			After struct {
				ID int `json:"id"`
			} `json:"after"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines++
		if e.Op == "r" {
			reads[e.After.ID]++
		}
	}
	return reads, lines
}

// A backfill started through the admin API runs in the daemon and fills
// the pipeline's system with every row, as op r events; cdcd jobs list
// and cdcd backfill (following, not on a terminal) show it.
func TestBackfillThroughAPIAndCLI(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", `CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2));
		INSERT INTO items SELECT g, 'item ' || g, g / 10.0 FROM generate_series(1, 2500) g;
		CREATE TABLE other (id int PRIMARY KEY)`)
	addr := freeAddr(t)
	dir := t.TempDir()
	out, other := filepath.Join(dir, "items.jsonl"), filepath.Join(dir, "other.jsonl")
	path := filepath.Join(dir, "cdcd.yaml")
	yaml := fmt.Sprintf(`postgres:
  url: %q
  tables: [items, other]
http:
  listen: %q
  admin_token: secret
log:
  level: warn
systems:
  archive: {type: file, path: %q}
  archive2: {type: file, path: %q}
pipelines:
  - {name: items-to-archive, from: public.items, to: archive}
  - {name: other-to-archive, from: public.other, to: archive2}
`, url, addr, out, other)
	runDaemon(t, path, yaml)
	cdctest.Eventually(t, 30*time.Second, "cdcd to be ready", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	api := func(method, p, body, token string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+p, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return resp.StatusCode, m
	}
	if code, _ := api("POST", "/api/jobs", `{"kind":"backfill","pipeline":"items-to-archive"}`, "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	if code, m := api("POST", "/api/jobs", `{"kind":"backfill","pipeline":"nope"}`, "secret"); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(m["error"]), "no pipeline") {
		t.Fatalf("unknown pipeline: %d %v", code, m)
	}
	code, job := api("POST", "/api/jobs", `{"kind":"backfill","pipeline":"items-to-archive","by":"crm-webhook"}`, "secret")
	if code != http.StatusCreated || job["status"] != "queued" || job["requested_by"] != "crm-webhook" {
		t.Fatalf("create: %d %v", code, job)
	}
	id := int64(job["id"].(float64))
	cdctest.Eventually(t, 60*time.Second, "the job to be done", func() bool {
		_, j := api("GET", fmt.Sprintf("/api/jobs/%d", id), "", "secret")
		if j["status"] == "failed" {
			t.Fatalf("job failed: %v", j["error"])
		}
		return j["status"] == "done"
	})
	cdctest.Eventually(t, 30*time.Second, "2500 rows in the file", func() bool {
		reads, _ := fileRows(t, out)
		return len(reads) == 2500
	})
	reads, _ := fileRows(t, out)
	for id, n := range reads {
		if n != 1 || id < 1 || id > 2500 {
			t.Fatalf("row %d read %d times", id, n)
		}
	}
	if _, n := fileRows(t, other); n != 0 {
		t.Fatalf("the other pipeline got %d events", n)
	}
	if code, m := api("POST", fmt.Sprintf("/api/jobs/%d/cancel", id), "", "secret"); code != http.StatusConflict {
		t.Fatalf("cancel of a done job: %d %v", code, m)
	}

	list, code, err := runExampleCLI(t, "jobs", "list", "-c", path)
	if err != nil || !strings.Contains(list, "items-to-archive") || !strings.Contains(list, "done") {
		t.Fatalf("jobs list: exit %d %v\n%s", code, err, list)
	}
	follow, code, err := runExampleCLI(t, "backfill", "-c", path, "--table", "public.items", "--where", "id <= 100")
	if err != nil {
		t.Fatalf("backfill: exit %d %v\n%s", code, err, follow)
	}
	lines := strings.Split(strings.TrimSpace(follow), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, " done") || !strings.Contains(last, "100/100") {
		t.Fatalf("backfill output ends with %q:\n%s", last, follow)
	}
	if _, code, _ := runExampleCLI(t, "export", "-c", path, "--table", "public.items"); code != 2 {
		t.Fatalf("export without a pipeline: exit %d", code)
	}
}
