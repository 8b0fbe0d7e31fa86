package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// Regression: a file pipeline wrote every change with every column,
// password hashes and truncates included, whatever its ops, filter and
// columns said.
func TestRunFilePipelineSelects(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", "CREATE TABLE users (id int PRIMARY KEY, email text, password_hash text, active bool)")
	addr := freeAddr(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "users.jsonl")
	path := filepath.Join(dir, "cdcd.yaml")
	yaml := fmt.Sprintf(`postgres: {url: %q, tables: [users]}
http: {listen: %q}
log: {level: warn}
systems:
  audit: {type: file, path: %q, fsync: false}
pipelines:
  - name: users-to-file
    from: users
    to: audit
    ops: [create, update]
    filter: after.active
    columns: {deny: [password_hash]}
`, url, addr, out)
	runDaemon(t, path, yaml)
	// Changes made before the slot exists are not captured: wait for it.
	cdctest.Eventually(t, 30*time.Second, "the slot", func() bool {
		return pg.ExecErr("app", "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = 'cdcd') THEN RAISE 'no slot'; END IF; END $$") == nil
	})
	pg.Exec(t, "app", `INSERT INTO users VALUES (1, 'a@x', 'hash-1', true), (2, 'b@x', 'hash-2', false);
		UPDATE users SET email = 'a2@x', password_hash = 'hash-3' WHERE id = 1;
		DELETE FROM users WHERE id = 1;
		TRUNCATE users;
		INSERT INTO users VALUES (3, 'last@x', 'hash-4', true);`)

	type line struct {
		Op     string         `json:"op"`
		Before map[string]any `json:"before"`
		After  map[string]any `json:"after"`
	}
	var lines []line
	var raw []byte
	cdctest.Eventually(t, 30*time.Second, "the last insert in the file", func() bool {
		raw, _ = os.ReadFile(out)
		lines = lines[:0]
		sc := bufio.NewScanner(bytes.NewReader(raw))
		for sc.Scan() {
			var l line
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("line %q: %v", sc.Bytes(), err)
			}
			lines = append(lines, l)
		}
		return len(lines) > 0 && lines[len(lines)-1].After["id"] == float64(3)
	})
	if bytes.Contains(raw, []byte("hash-")) || bytes.Contains(raw, []byte("password_hash")) {
		t.Errorf("the file holds denied columns:\n%s", raw)
	}
	want := []string{"c a@x", "u a2@x", "c last@x"}
	if len(lines) != len(want) {
		t.Fatalf("the file holds %d changes, want %d (no inactive user, delete or truncate):\n%s", len(lines), len(want), raw)
	}
	for i, l := range lines {
		if got := fmt.Sprintf("%s %v", l.Op, l.After["email"]); got != want[i] {
			t.Errorf("line %d: %s, want %s", i, got, want[i])
		}
	}
}
