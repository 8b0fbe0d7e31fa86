package store

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

func TestOpenMigratesOnceWhenProcessesStartTogether(t *testing.T) {
	url := newDB(t)
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	log := zerolog.New(zerolog.NewTestWriter(t))
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := Open(ctx, url, log)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
	}
	// And once more, with everything applied.
	s, err := Open(ctx, url, log)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	s.Close()
	if n := queryInt(t, url, "SELECT count(*) FROM cdcd.schema_migrations"); n != int64(len(ms)) {
		t.Fatalf("%d rows in cdcd.schema_migrations, want %d", n, len(ms))
	}
	for _, table := range []string{"cdcd.links", "cdcd.dead_letters", "cdcd.sync_events"} {
		if n := queryInt(t, url, "SELECT count(*) FROM pg_class WHERE oid = to_regclass($1)", table); n != 1 {
			t.Errorf("table %s missing", table)
		}
	}
}

func TestOpenRefusesAMigrationChangedAfterItWasApplied(t *testing.T) {
	s, url := openStore(t)
	s.Close()
	execSQL(t, url, "UPDATE cdcd.schema_migrations SET checksum = 'edited' WHERE version = 1")
	_, err := Open(context.Background(), url, zerolog.New(zerolog.NewTestWriter(t)))
	if err == nil || !strings.Contains(err.Error(), "0001_init.sql changed after it was applied") {
		t.Fatalf("open after edit: %v, want a changed-migration error", err)
	}
}

func TestOpenUnreachableDatabase(t *testing.T) {
	_, err := Open(context.Background(), "postgres://cdcd@127.0.0.1:1/none?sslmode=disable&connect_timeout=5", zerolog.Nop())
	if err == nil || !strings.HasPrefix(err.Error(), "connect to postgres:") {
		t.Fatalf("open: %v, want a connect error", err)
	}
}

// The webhook intake made its tables itself before 0004: a database
// holding them, with changes not delivered yet, migrates and keeps them,
// owned by no deployment until one adopts them.
func TestOpenMigratesIntakeTablesMadeBefore(t *testing.T) {
	url := newDB(t)
	execSQL(t, url, `CREATE SCHEMA cdcd;
		CREATE TABLE cdcd.webhook_deliveries (system text NOT NULL, delivery_id text NOT NULL,
			accepted_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (system, delivery_id));
		CREATE TABLE cdcd.inbox (id bigserial PRIMARY KEY, system text NOT NULL, delivery_id text NOT NULL,
			key bytea NOT NULL, envelope bytea NOT NULL, received_at timestamptz NOT NULL DEFAULT now());
		INSERT INTO cdcd.webhook_deliveries (system, delivery_id) VALUES ('hubspot', 'd1');
		INSERT INTO cdcd.inbox (system, delivery_id, key, envelope) VALUES ('hubspot', 'd1', '{}', '{}')`)
	s, err := Open(context.Background(), url, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if n := queryInt(t, url, `SELECT count(*) FROM cdcd.inbox WHERE deployment = ''`); n != 1 {
		t.Fatalf("%d inbox rows of no deployment, want 1", n)
	}
	// The same id may now be accepted once per deployment.
	execSQL(t, url, `INSERT INTO cdcd.webhook_deliveries (deployment, system, delivery_id) VALUES ('a', 'hubspot', 'd1'), ('b', 'hubspot', 'd1')`)
	if n := queryInt(t, url, `SELECT count(*) FROM cdcd.webhook_deliveries WHERE delivery_id = 'd1'`); n != 3 {
		t.Fatalf("%d ids d1, want 3", n)
	}
}

// Dead letters stored as jsonb before 0005 are kept, as the JSON text
// jsonb gives back, once record and event hold bytes.
func TestOpenMigratesDeadLettersToBytes(t *testing.T) {
	url := newDB(t)
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	execSQL(t, url, `CREATE SCHEMA cdcd; CREATE TABLE cdcd.schema_migrations (version integer PRIMARY KEY,
		name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
	for _, m := range ms {
		if m.version >= 5 {
			break
		}
		execSQL(t, url, m.sql)
		execSQL(t, url, `INSERT INTO cdcd.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`, m.version, m.name, m.checksum)
	}
	execSQL(t, url, `INSERT INTO cdcd.dead_letters (pipeline, system, object, local_table, local_key, event_id, op, record, event, error)
		VALUES ('p', 'crm', 'contacts', 'public.contacts', '{"id":1}', 'e1', 'u', '{"name":"Zoë"}', '{"op":"u","after":{"id":1}}', 'refused')`)
	s, err := Open(context.Background(), url, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	letters, err := s.ListDeadLetters(context.Background(), DeadLetterFilter{Pipeline: "p"})
	if err != nil || len(letters) != 1 {
		t.Fatalf("letters %+v, %v", letters, err)
	}
	got, err := s.GetDeadLetter(context.Background(), letters[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Record) != `{"name": "Zoë"}` || string(got.Event) != `{"op": "u", "after": {"id": 1}}` || got.Key != `{"id":1}` {
		t.Fatalf("migrated letter: record %s, event %s, key %s", got.Record, got.Event, got.Key)
	}
}
