package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/cdc/pgwal"
	"github.com/cdcd-dev/cdcd/daemon"
)

// Regression: a table without a primary key went into the publication,
// after which the application's own UPDATE and DELETE on it failed.
// validate --check-db and run refuse it, with the fix, unless every
// pipeline from it takes inserts only; then only its inserts are
// published and the application's updates keep working.
func TestTablesWithoutReplicaIdentity(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", `CREATE TABLE users (id int PRIMARY KEY, email text); CREATE TABLE events (kind text, at timestamptz DEFAULT now())`)
	addr := freeAddr(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "events.jsonl")
	write := func(ops string) string {
		path := filepath.Join(dir, "cdcd.yaml")
		yaml := fmt.Sprintf(`postgres:
  url: %q
  tables: [users, events]
http: {listen: %q}
log: {level: warn}
systems:
  audit: {type: file, path: %q, fsync: false}
pipelines:
  - {name: users-to-file, from: users, to: audit}
  - {name: events-to-file, from: events, to: audit, ops: %s}
`, url, addr, out, ops)
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	path := write("[create, update]")
	_, code, err := runExampleCLI(t, "validate", "--check-db", "-c", path)
	want := path + `:3:19: postgres.tables[1]: table public.events has no replica identity, so once published the application's UPDATE and DELETE on it would fail: add a primary key, or ALTER TABLE "public"."events" REPLICA IDENTITY FULL; or let every pipeline from it take inserts only (ops: [create]), which publishes its inserts alone`
	if code != 2 || err == nil || err.Error() != want {
		t.Fatalf("validate --check-db: exit %d, %v; want exit 2 and\n%s", code, err, want)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ie *pgwal.IdentityError
	if err := run(ctx, cfg, daemon.RoleAll); !errors.As(err, &ie) || !strings.Contains(err.Error(), "public.events has no replica identity") {
		t.Fatalf("run = %v, want the refusal", err)
	}
	if err := pg.ExecErr("app", `DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_publication) THEN RAISE 'a publication was made'; END IF; END $$`); err != nil {
		t.Fatal(err)
	}

	path = write("[create]")
	if _, code, err := runExampleCLI(t, "validate", "--check-db", "-c", path); code != 0 {
		t.Fatalf("validate --check-db with inserts only: exit %d, %v", code, err)
	}
	if cfg, err = loadConfig(path); err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(rctx, cfg, daemon.RoleAll) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	cdctest.Eventually(t, 30*time.Second, "the slot", func() bool {
		return pg.ExecErr("app", "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = 'cdcd') THEN RAISE 'no slot'; END IF; END $$") == nil
	})
	// The application's own statements on the table keep working.
	pg.Exec(t, "app", `INSERT INTO events (kind) VALUES ('signup'); UPDATE events SET kind = 'signed_up'; DELETE FROM events;
		INSERT INTO users VALUES (1, 'a@x'); UPDATE users SET email = 'b@x'; INSERT INTO events (kind) VALUES ('last')`)
	// Two pipelines write the file, each in order, neither waiting for
	// the other.
	opsInFile := func() string {
		b, _ := os.ReadFile(out)
		ops := map[string][]string{} // by table
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			i := strings.Index(line, `"op":"`)
			j := strings.Index(line, `"table":"`)
			if i < 0 || j < 0 {
				continue
			}
			table := strings.SplitN(line[j+9:], `"`, 2)[0]
			ops[table] = append(ops[table], line[i+6:i+7])
		}
		return fmt.Sprint(ops)
	}
	const wantOps = "map[events:[c c] users:[c u]]"
	cdctest.Eventually(t, 30*time.Second, "both pipelines' changes in the file", func() bool { return len(opsInFile()) >= len(wantOps) })
	if got := opsInFile(); got != wantOps {
		t.Fatalf("the file holds %s", got)
	}
}
