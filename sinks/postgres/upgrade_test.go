package postgres

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/conflict"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// oldFormStates rewrites every apply state as a cdcd before migration
// 0130 wrote it: a stamp for each column, none listed under "".
const oldFormStates = `UPDATE cdcd.apply_state SET fields = (fields - '') || COALESCE((
	SELECT jsonb_object_agg(c, jsonb_build_array(to_char(version AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), event_id))
	FROM jsonb_array_elements_text(fields -> '') c), '{}') WHERE fields ? ''`

// A cdcd upgraded in place reads the states an older one wrote (a stamp
// per column) and those migration 0130 folded the same: a re-delivered
// change is a no-op, a late change of a column set later is refused, a
// newer one applies without a conflict, and a local edit still makes one.
func TestUpgradeKeepsTheStates(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	migration, err := os.ReadFile("../../store/migrations/0130_apply_state_row_stamps.sql")
	if err != nil {
		t.Fatal(err)
	}
	for db, migrated := range map[string]bool{"older": false, "migrated": true} {
		t.Run(db, func(t *testing.T) {
			url := hostileDB(t, pg, db)
			newW := func() *Writer {
				w, err := New("crm", testConfig(url), Inbound{Conflicts: &Conflicts{
					Pipeline: "crm-in", Policy: conflict.Policy{Rules: []conflict.Rule{{Kind: conflict.KindManual}}},
					Columns: map[string]string{"email": "email", "firstname": "name", "phone": "phone"},
				}}, config.Env{Log: zerolog.New(zerolog.NewTestWriter(t))})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { w.Close(context.Background()) })
				return w
			}
			created := []syncapi.Record{
				crmRecord(cdc.OpCreate, 1, "d1", "700", false, "email", `"a@x"`, "firstname", `"Ada"`, "phone", `"1"`),
				crmRecord(cdc.OpCreate, 1, "d2", "701", false, "email", `"b@x"`, "firstname", `"Bob"`, "phone", `"2"`),
			}
			w := newW()
			write(t, w, created...)
			// a@x's name is set later than its other columns: its state
			// holds the record's stamp for name, an older one for the others.
			write(t, w, crmRecord(cdc.OpUpdate, 3, "d3", "700", true, "firstname", `"Bea"`))
			if n := queryCount(t, url, `SELECT count(*) FROM cdcd.apply_state WHERE fields ? ''`); n != 2 {
				t.Fatalf("%d states list the record's columns, want 2", n)
			}
			pg.Exec(t, db, oldFormStates)
			if n := queryCount(t, url, `SELECT count(*) FROM cdcd.apply_state WHERE fields ? ''`); n != 0 {
				t.Fatalf("%d states in the new form, want none", n)
			}
			if migrated {
				pg.Exec(t, db, string(migration))
				if n := queryCount(t, url, `SELECT count(*) FROM cdcd.apply_state WHERE fields ? ''`); n != 2 {
					t.Fatalf("after the migration %d states list the record's columns, want 2", n)
				}
			}

			w = newW() // cdcd restarted on the new version
			res := write(t, w, created[0], created[1], crmRecord(cdc.OpUpdate, 2, "late", "700", true, "firstname", `"Old"`))
			for i, r := range res {
				if r.Err != nil {
					t.Errorf("record %d: %v", i, r.Err)
				}
			}
			if a := row(t, url, "a@x"); a["name"] != "Bea" || a["phone"] != "1" {
				t.Errorf("a@x %v after re-delivery and a late change; want Bea kept", a)
			}
			// A newer change applies without a conflict; a local edit
			// conflicts with the next one.
			write(t, w, crmRecord(cdc.OpUpdate, 4, "d4", "701", true, "phone", `"22"`))
			if b := row(t, url, "b@x"); b["phone"] != "22" || b["name"] != "Bob" {
				t.Errorf("b@x %v, want phone 22", b)
			}
			if c := lastConflict(t, url); c.n != 0 {
				t.Fatalf("conflicts %+v, want none", c)
			}
			pg.Exec(t, db, `UPDATE contacts SET name = 'Local' WHERE email = 'a@x'`)
			write(t, w, crmRecord(cdc.OpUpdate, 5, "d5", "700", true, "firstname", `"Remote"`))
			if c := lastConflict(t, url); c.n != 1 || c.status != "escalated" || c.fields != "firstname" {
				t.Fatalf("conflicts %+v, want firstname escalated", c)
			}
			if a := row(t, url, "a@x"); a["name"] != "Local" {
				t.Errorf("a@x %v, want the local name kept", a)
			}
		})
	}
}

// queryCount runs a count on a connection of its own.
func queryCount(t *testing.T, url, sql string) int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}
