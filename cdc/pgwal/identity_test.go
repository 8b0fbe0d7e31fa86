package pgwal

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/jackc/pgx/v5"
)

// Regression: a table without a primary key was put in the publication,
// after which Postgres refused the application's own UPDATE and DELETE on
// it ("cannot update table ... because it does not have a replica
// identity and publishes updates").
func TestReaderRefusesTablesWithoutReplicaIdentity(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", `CREATE TABLE ok (id int PRIMARY KEY); CREATE TABLE "Events" (v text);
		CREATE TABLE full_rows (v text); ALTER TABLE full_rows REPLICA IDENTITY FULL;
		CREATE TABLE nothing (id int PRIMARY KEY); ALTER TABLE nothing REPLICA IDENTITY NOTHING`)
	for _, tt := range []struct {
		name   string
		cfg    Config
		want   string
		tables []Table
	}{
		{"listed", testConfig(url, "ok", "public.Events", "full_rows", "nothing"),
			`table public.Events has no replica identity, so once published the application's UPDATE and DELETE on it would fail: add a primary key, or ALTER TABLE "public"."Events" REPLICA IDENTITY FULL; or let every pipeline from it take inserts only (ops: [create]), which publishes its inserts alone
table public.nothing has no replica identity`,
			[]Table{{"public", "Events"}, {"public", "nothing"}}},
		{"all tables", testConfig(url), "or list in postgres.tables the tables cdcd captures", []Table{{"public", "Events"}, {"public", "nothing"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, done := startReader(t, tt.cfg, &cdctest.Collector{})
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Run kept retrying a problem only the operator can fix")
			}
			var ie *IdentityError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), tt.want) || len(ie.Tables) != len(tt.tables) ||
				ie.Tables[0] != tt.tables[0] || ie.Tables[1] != tt.tables[1] {
				t.Fatalf("Run = %v, want an IdentityError of %v containing %q", err, tt.tables, tt.want)
			}
			if err := CheckIdentity(context.Background(), url, tt.cfg.Tables, nil); err == nil || err.Error() != ie.Error() {
				t.Errorf("CheckIdentity = %v, want the reader's error", err)
			}
		})
	}
	// Refused before the publication was touched: the application's
	// tables still take updates.
	if n := count(t, url, `SELECT count(*) FROM pg_publication`); n != 0 {
		t.Fatalf("%d publications made", n)
	}
	pg.Exec(t, "app", `INSERT INTO "Events" VALUES ('a'); UPDATE "Events" SET v = 'b'; DELETE FROM "Events"`)
}

// A table without a replica identity whose pipelines take inserts only is
// published for inserts alone, in a publication of its own: its inserts
// are captured and the application's UPDATE and DELETE on it still work.
func TestReaderPublishesInsertsOnlyTables(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", `CREATE TABLE ok (id int PRIMARY KEY, v text); CREATE TABLE "Events" (v text)`)
	cfg := testConfig(url, "ok", "public.Events")
	cfg.InsertsOnly = []Table{{"public", "Events"}}
	if err := CheckIdentity(context.Background(), url, cfg.Tables, cfg.InsertsOnly); err != nil {
		t.Fatalf("CheckIdentity = %v", err)
	}
	col := &cdctest.Collector{}
	r, stop, _ := startReader(t, cfg, col)
	cdctest.Eventually(t, 30*time.Second, "streaming", r.Streaming)
	pg.Exec(t, "app", `INSERT INTO "Events" VALUES ('a'); UPDATE "Events" SET v = 'b'; DELETE FROM "Events";
		INSERT INTO ok VALUES (1, 'x'); UPDATE ok SET v = 'y'; INSERT INTO "Events" VALUES ('c')`)
	got := col.WaitFor(t, 30*time.Second, "the last insert", func(es []cdc.Event) bool {
		return len(es) > 0 && es[len(es)-1].Table == "Events" && string(es[len(es)-1].After[0].Value) == `"c"`
	})
	var seen []string
	for _, e := range got {
		seen = append(seen, string(e.Op)+" "+e.Table)
	}
	if want := "c Events,c ok,u ok,c Events"; strings.Join(seen, ",") != want {
		t.Fatalf("captured %s, want %s", strings.Join(seen, ","), want)
	}
	if n := count(t, url, `SELECT count(*) FROM pg_publication WHERE pubname = 'cdcd_inserts' AND pubinsert AND NOT (pubupdate OR pubdelete)`); n != 1 {
		t.Fatalf("no inserts-only publication")
	}
	// A restart finds both publications as they should be.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	r, _, _ = startReader(t, cfg, col)
	cdctest.Eventually(t, 30*time.Second, "streaming again", r.Streaming)
	// The table's pipelines now take updates too: refused, with the fix.
	cfg.InsertsOnly = nil
	if err := CheckIdentity(context.Background(), url, cfg.Tables, nil); err == nil || !strings.Contains(err.Error(), "public.Events") {
		t.Fatalf("CheckIdentity = %v", err)
	}
}

func count(t *testing.T, url, sql string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
