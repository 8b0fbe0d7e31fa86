package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/syncstate"
	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"
)

// applyUpTo applies the migrations up to version last to the database at
// url as an older cdcd did: the schema of a deployment made before.
func applyUpTo(t *testing.T, url string, last int) {
	t.Helper()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	execSQL(t, url, `CREATE SCHEMA IF NOT EXISTS cdcd; CREATE TABLE cdcd.schema_migrations (version integer PRIMARY KEY,
		name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
	for _, m := range ms {
		if m.version > last {
			break
		}
		execSQL(t, url, m.sql)
		execSQL(t, url, `INSERT INTO cdcd.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`, m.version, m.name, m.checksum)
	}
}

// The ad-hoc statements by which the Postgres writer made its state table
// before migration 0008 owned it: first without per-column stamps, then
// adding them.
const (
	adHocStateDDL = `CREATE TABLE IF NOT EXISTS cdcd.apply_state (
		system     text NOT NULL,
		table_name text NOT NULL,
		key        text NOT NULL,
		version    timestamptz,
		event_id   text NOT NULL DEFAULT '',
		deleted_at timestamptz,
		PRIMARY KEY (system, table_name, key))`
	adHocFieldsDDL = `ALTER TABLE cdcd.apply_state ADD COLUMN IF NOT EXISTS fields jsonb`
)

// schemaOf describes schema cdcd: every column with its type, nullability
// and default, every constraint and index, and the comments.
func schemaOf(t *testing.T, url string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `
		SELECT format('column %s.%s %s not null %s default %s comment %s', c.relname, a.attname,
			format_type(a.atttypid, a.atttypmod), a.attnotnull, coalesce(pg_get_expr(d.adbin, d.adrelid), '-'),
			coalesce(col_description(c.oid, a.attnum), '-'))
		FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE n.nspname = 'cdcd' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
		  AND c.relname <> 'schema_migrations'
		UNION ALL
		SELECT format('constraint %s.%s %s', c.relname, k.conname, pg_get_constraintdef(k.oid))
		FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'cdcd'
		UNION ALL
		SELECT format('index %s', indexdef) FROM pg_indexes WHERE schemaname = 'cdcd'
		UNION ALL
		SELECT format('table %s comment %s replica identity %s', c.relname, coalesce(obj_description(c.oid, 'pg_class'), '-'), c.relreplident)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'cdcd' AND c.relkind = 'r'
		ORDER BY 1`)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A database made by an older cdcd (migrations 0001-0007, and the state
// table its Postgres writer made itself) upgrades to the schema a new
// database gets, its rows kept, and works. Either form of the state table
// an older cdcd left (with or without per-column stamps) upgrades.
func TestOpenUpgradesTheSchemaAnOlderCdcdMade(t *testing.T) {
	_, freshURL := openStore(t)
	want := schemaOf(t, freshURL)
	for _, tt := range []struct {
		name  string
		state string
	}{
		{"state without per-column stamps", adHocStateDDL},
		{"state with per-column stamps", adHocStateDDL + ";" + adHocFieldsDDL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			url := newDB(t)
			applyUpTo(t, url, 7)
			execSQL(t, url, tt.state)
			execSQL(t, url, `
				INSERT INTO cdcd.apply_state (system, table_name, key, version, event_id, deleted_at)
					VALUES ('hubspot', 'public.contacts', '901', '2026-01-02T03:04:05Z', 'e1', now());
				INSERT INTO cdcd.links (system, object, local_table, local_key, external_id, base)
					VALUES ('hubspot', 'contacts', 'public.contacts', '{"id":1}', '902', '{"email":"a@x"}');
				INSERT INTO cdcd.inbox (deployment, system, delivery_id, key, envelope) VALUES ('cdcd', 'hubspot', 'd1', '{}', '{}');
				INSERT INTO cdcd.webhook_deliveries (deployment, system, delivery_id) VALUES ('cdcd', 'hubspot', 'd1')`)

			ctx := context.Background()
			s, err := Open(ctx, url, zerolog.New(zerolog.NewTestWriter(t)))
			if err != nil {
				t.Fatalf("open the older schema: %v", err)
			}
			defer s.Close()
			if got := schemaOf(t, url); !slices.Equal(got, want) {
				t.Errorf("upgraded schema differs from a new one:\n%s", diffLines(got, want))
			}
			if n := queryInt(t, url, `SELECT count(*) FROM cdcd.apply_state
				WHERE key = '901' AND event_id = 'e1' AND deleted_at IS NOT NULL AND fields IS NULL`); n != 1 {
				t.Errorf("the tombstone in cdcd.apply_state is not kept")
			}
			for _, table := range []string{"cdcd.inbox", "cdcd.webhook_deliveries"} {
				if n := queryInt(t, url, "SELECT count(*) FROM "+table+" WHERE deployment = 'cdcd'"); n != 1 {
					t.Errorf("%s holds %d rows of the deployment, want 1", table, n)
				}
			}
			links, err := s.Links().Get(ctx, []syncstate.LinkRef{ref(`{"id":1}`)})
			if err != nil {
				t.Fatal(err)
			}
			if l := links[ref(`{"id":1}`)]; l == nil || l.ExternalID != "902" || l.Base["email"] != "a@x" {
				t.Fatalf("the link made before: %+v", l)
			}
			// Started again, nothing is applied twice.
			s2, err := Open(ctx, url, zerolog.New(zerolog.NewTestWriter(t)))
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			s2.Close()
			ms, _ := migrations()
			if n := queryInt(t, url, "SELECT count(*) FROM cdcd.schema_migrations"); n != int64(len(ms)) {
				t.Errorf("%d migrations recorded, want %d", n, len(ms))
			}
		})
	}
}

// diffLines lists the lines only one side has.
func diffLines(got, want []string) string {
	in := func(s []string) map[string]bool {
		m := map[string]bool{}
		for _, x := range s {
			m[x] = true
		}
		return m
	}
	g, w := in(got), in(want)
	var out string
	for _, x := range got {
		if !w[x] {
			out += "+ " + x + "\n"
		}
	}
	for _, x := range want {
		if !g[x] {
			out += "- " + x + "\n"
		}
	}
	return out
}

// Migration 0130 keeps the states an older cdcd wrote (a stamp per
// column) as the list of columns stamped with the record's own stamp
// plus the others' stamps; a stamp that differs from the record's (another
// event, another version, nanoseconds the record's timestamptz cannot
// hold, no version), a state without stamps and a tombstone stay as they
// were.
func TestMigrationFoldsTheRecordsStamps(t *testing.T) {
	url := newDB(t)
	applyUpTo(t, url, 129)
	execSQL(t, url, `INSERT INTO cdcd.apply_state (system, table_name, key, version, event_id, deleted_at, fields) VALUES
		('crm', 'public.contacts', 'all', '2026-01-02T03:04:05.123456Z', 'e9',  NULL,
			'{"city": ["2026-01-02T03:04:05.123456Z", "e9"], "name": ["2026-01-02T03:04:05.123456Z", "e9"]}'),
		('crm', 'public.contacts', 'some', '2026-01-02T03:04:05Z', 'e9', NULL,
			'{"city": ["2026-01-02T03:04:05Z", "e9"], "name": ["2026-01-02T03:04:04Z", "e8"], "phone": ["2026-01-02T03:04:05Z", "e7"], "*": ["2026-01-02T03:04:05Z", "e9"]}'),
		('crm', 'public.contacts', 'nanos', '2026-01-02T03:04:05.123457Z', 'e9', NULL,
			'{"city": ["2026-01-02T03:04:05.1234567Z", "e9"]}'),
		('crm', 'public.contacts', 'noversion', NULL, 'e9', NULL, '{"city": ["", "e9"]}'),
		('crm', 'public.contacts', 'legacy', '2026-01-02T03:04:05Z', 'e9', NULL, NULL),
		('crm', 'public.contacts', 'deleted', '2026-01-02T03:04:05Z', 'e9', now(), '{}')`)
	s, err := Open(context.Background(), url, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for key, want := range map[string]string{
		"all":       `{"": ["city", "name"]}`,
		"some":      `{"": ["*", "city"], "name": ["2026-01-02T03:04:04Z", "e8"], "phone": ["2026-01-02T03:04:05Z", "e7"]}`,
		"nanos":     `{"city": ["2026-01-02T03:04:05.1234567Z", "e9"]}`,
		"noversion": `{"city": ["", "e9"]}`,
		"deleted":   `{}`,
	} {
		if n := queryInt(t, url, `SELECT count(*) FROM cdcd.apply_state WHERE key = $1 AND fields = $2::jsonb`, key, want); n != 1 {
			t.Errorf("state %s: fields not %s", key, want)
		}
	}
	if n := queryInt(t, url, `SELECT count(*) FROM cdcd.apply_state WHERE key = 'legacy' AND fields IS NULL`); n != 1 {
		t.Errorf("the state without stamps changed")
	}
}

// Migration 0166 finds deleted links by deleted_at instead of updated_at:
// a link deleted before it is pruned by when it was deleted (its
// updated_at then), not by when the migration ran.
func TestMigrationKeepsWhenLinksWereDeleted(t *testing.T) {
	url := newDB(t)
	applyUpTo(t, url, 165)
	execSQL(t, url, `INSERT INTO cdcd.links (system, object, local_table, local_key, external_id, deleted, updated_at) VALUES
		('crm', 'contacts', 'public.contacts', 'gone', '1', true, now() - interval '2 hours'),
		('crm', 'contacts', 'public.contacts', 'recent', '2', true, now() - interval '10 minutes'),
		('crm', 'contacts', 'public.contacts', 'live', '3', false, now() - interval '30 days')`)
	s, err := Open(context.Background(), url, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n, err := s.PruneDeletedLinks(context.Background(), time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want the link deleted 2 hours ago", n, err)
	}
	if got := queryInt(t, url, "SELECT count(*) FROM cdcd.links WHERE local_key IN ('recent', 'live')"); got != 2 {
		t.Errorf("%d of the live and the recently deleted link kept, want 2", got)
	}
}

// Migration 0170 fills the states' pages half at insert (their updates
// fit their page: HOT, see applystate's TestStateUpdatesAddNoIndexEntries);
// the states kept before it stay as they were.
func TestMigrationLeavesRoomInStatePages(t *testing.T) {
	url := newDB(t)
	applyUpTo(t, url, 169)
	execSQL(t, url, `INSERT INTO cdcd.apply_state (system, table_name, key, version, event_id, deleted_at, fields) VALUES
		('crm', 'public.contacts', 'live', '2026-01-02T03:04:05Z', 'e9', NULL, '{"": ["city", "name"]}'),
		('crm', 'public.contacts', 'deleted', '2026-01-02T03:04:05Z', 'e8', now(), '{}')`)
	s, err := Open(context.Background(), url, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if n := queryInt(t, url, `SELECT count(*) FROM pg_class WHERE oid = 'cdcd.apply_state'::regclass AND 'fillfactor=50' = ANY(reloptions)`); n != 1 {
		t.Errorf("cdcd.apply_state has no fillfactor of 50")
	}
	if n := queryInt(t, url, `SELECT count(*) FROM cdcd.apply_state WHERE
		(key = 'live' AND event_id = 'e9' AND deleted_at IS NULL AND fields = '{"": ["city", "name"]}')
		OR (key = 'deleted' AND event_id = 'e8' AND deleted_at IS NOT NULL AND fields = '{}')`); n != 2 {
		t.Errorf("%d of the 2 states kept as they were", n)
	}
}
