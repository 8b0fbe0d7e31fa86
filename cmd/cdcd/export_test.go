package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

// An export sends every row of a pipeline's table to the system: records
// the system already holds (same email) are adopted and updated, the rest
// created, each linked; a second export creates nothing.
func TestExportCreatesOrUpdatesByLink(t *testing.T) {
	hub := hubspot.New(hubspot.Options{Limit: -1})
	defer hub.Close()
	existing := map[string]string{}
	for i := 1; i <= 10; i++ {
		email := fmt.Sprintf("c%d@example.com", i)
		existing[email] = hub.Insert("contacts", map[string]string{"email": email, "firstname": "Old"})
	}
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", `CREATE TABLE contacts (id int PRIMARY KEY, email text NOT NULL UNIQUE, first_name text);
		INSERT INTO contacts SELECT g, 'c' || g || '@example.com', 'Name ' || g FROM generate_series(1, 60) g`)
	addr := freeAddr(t)
	path := filepath.Join(t.TempDir(), "cdcd.yaml")
	yaml := fmt.Sprintf(`postgres: {url: %q, tables: [contacts]}
http: {listen: %q}
log: {level: warn}
systems:
  hubspot: {type: hubspot, base_url: %q, token: tok, object: contacts, id_property: email, rate: {requests: 1000, per: 1s}}
pipelines:
  - name: contacts-to-hubspot
    from: public.contacts
    to: hubspot
    map: {email: email, firstname: first_name}
`, url, addr, hub.URL())
	runDaemon(t, path, yaml)
	cdctest.Eventually(t, 30*time.Second, "the slot", func() bool {
		return pg.ExecErr("app", "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = 'cdcd' AND active) THEN RAISE 'no slot'; END IF; END $$") == nil
	})

	if out, code, err := runExampleCLI(t, "export", "contacts-to-hubspot", "-c", path); err != nil {
		t.Fatalf("export: exit %d %v\n%s", code, err, out)
	}
	check := func() {
		t.Helper()
		objs := hub.Objects("contacts")
		if len(objs) != 60 {
			t.Fatalf("HubSpot holds %d contacts, want 60", len(objs))
		}
		for _, o := range objs {
			var id int
			if _, err := fmt.Sscanf(o.Properties["email"], "c%d@example.com", &id); err != nil || o.Properties["firstname"] != fmt.Sprintf("Name %d", id) {
				t.Fatalf("contact %s holds %v", o.ID, o.Properties)
			}
			if want, ok := existing[o.Properties["email"]]; ok && want != o.ID {
				t.Fatalf("%s: contact %s created beside the existing %s", o.Properties["email"], o.ID, want)
			}
		}
	}
	check()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var links int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM cdcd.links WHERE system = 'hubspot' AND NOT deleted`).Scan(&links); err != nil || links != 60 {
		t.Fatalf("%d links (%v), want 60", links, err)
	}

	writes := len(hub.Writes())
	if out, code, err := runExampleCLI(t, "export", "contacts-to-hubspot", "-c", path); err != nil {
		t.Fatalf("second export: exit %d %v\n%s", code, err, out)
	}
	check()
	for _, w := range hub.Writes()[writes:] {
		if w.Op == "create" {
			t.Fatalf("the second export created %s", w.ID)
		}
	}
}
