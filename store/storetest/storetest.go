// Package storetest holds fixtures of cdcd's store for the tests of the
// packages that serve it (the admin API, the CLI).
package storetest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/store"
)

// EscalatedConflict is a database with contact 1 held by an escalated
// conflict on firstname (local Ann, base Ada, remote Bea), its store and
// its URL.
func EscalatedConflict(t *testing.T) (*store.Store, string) {
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

// FirstName reads contact 1's first_name in the fixture's database.
func FirstName(t *testing.T, url string) string {
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
