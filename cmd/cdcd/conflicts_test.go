package main

import (
	"context"
	"regexp"
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

func TestConflictsCommands(t *testing.T) {
	_, url := conflictFixture(t)
	cfg := writeConfig(t, url)

	out, _, code := runCLI(t, "conflicts", "list", "-c", cfg)
	if code != 0 || !strings.Contains(out, "escalated") || !strings.Contains(out, "hubspot 512") || !strings.Contains(out, "firstname") {
		t.Fatalf("list (%d):\n%s", code, out)
	}
	out, _, code = runCLI(t, "conflicts", "show", "1", "-c", cfg)
	if code != 0 || !regexpMatch(`(?m)^FIELD\s+LOCAL\s+BASE\s+REMOTE$`, out) || !regexpMatch(`(?m)^firstname\s+"Ann"\s+"Ada"\s+"Bea"$`, out) {
		t.Fatalf("show (%d):\n%s", code, out)
	}
	_, errOut, code := runCLI(t, "conflicts", "resolve", "1", "merged", "-c", cfg)
	if code != 1 || !strings.Contains(errOut, `no merged value for conflicting field "firstname"`) {
		t.Fatalf("merged without values (%d): %s", code, errOut)
	}
	_, errOut, code = runCLI(t, "conflicts", "resolve", "1", "both", "-c", cfg)
	if code != 2 || !strings.Contains(errOut, `"both" is not local, remote or merged`) {
		t.Fatalf("bad choice (%d): %s", code, errOut)
	}
	out, _, code = runCLI(t, "conflicts", "resolve", "1", "merged", "--value", `firstname="Ann-Bea"`, "--by", "alice", "-c", cfg)
	if code != 0 || !strings.Contains(out, "conflict 1 resolved (manual:merged) by alice") || firstName(t, url) != "Ann-Bea" {
		t.Fatalf("resolve (%d): %s; local %s", code, out, firstName(t, url))
	}
	out, _, _ = runCLI(t, "conflicts", "list", "-c", cfg)
	if !strings.Contains(out, "no conflicts") {
		t.Fatalf("open after resolving:\n%s", out)
	}
	_, errOut, code = runCLI(t, "conflicts", "show", "99", "-c", cfg)
	if code != 1 || !strings.Contains(errOut, "conflict 99: not found") {
		t.Fatalf("missing (%d): %s", code, errOut)
	}
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }
