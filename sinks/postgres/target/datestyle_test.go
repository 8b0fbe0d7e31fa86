package target

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// Regression: a row's local key was built from its key columns read as
// text in the session's DateStyle, so a date or timestamp in a table's
// key came back as 02/01/2026 under DateStyle SQL, DMY, where captured
// events carry 2026-01-02: the inbound link's local key named no record
// the outbound pipeline's events name, which then found no link and
// created the record in the system again. Every write that reports keys
// reports them as captured events carry them, whatever the DateStyle.
func TestKeysWhateverTheDateStyle(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "days")
	pg.Exec(t, "days", `CREATE TABLE days (day date, at timestamptz, local timestamp, sku text NOT NULL UNIQUE, qty int,
		PRIMARY KEY (day, at, local))`)
	ctx := context.Background()
	for _, style := range []string{"SQL, DMY", "German", "Postgres, MDY", "ISO, DMY"} {
		t.Run(style, func(t *testing.T) {
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, "SET DateStyle = '"+style+"'; SET TimeZone = 'America/New_York'"); err != nil {
				t.Fatal(err)
			}
			tbl, err := Open(ctx, conn, "public.days")
			if err != nil {
				t.Fatal(err)
			}
			const want = `{"day":"2026-01-02","at":"2026-01-02T03:04:05.000000Z","local":"2026-01-02T03:04:05.500000"}`
			fields := map[string]any{"day": "2026-01-02", "at": "2026-01-02T03:04:05Z", "local": "2026-01-02T03:04:05.5", "qty": 1}
			err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if got, err := tbl.Upsert(ctx, tx, fields, map[string]any{"sku": "A"}); err != nil || got != want {
					t.Errorf("Upsert: key %s, %v; want %s", got, err, want)
				}
				pk, err := KeyValues(want)
				if err != nil {
					return err
				}
				if got, found, err := tbl.Update(ctx, tx, map[string]any{"qty": 2}, pk); err != nil || !found || got != want {
					t.Errorf("Update: key %s %v, %v; want %s", got, found, err, want)
				}
				got, err := tbl.UpsertMany(ctx, tx, []string{"at", "day", "local", "qty", "sku"}, []string{"sku"},
					[]map[string]any{{"sku": "A", "day": "2026-01-02", "at": "2026-01-02T03:04:05Z", "local": "2026-01-02T03:04:05.5", "qty": 3}})
				if err != nil || len(got) != 1 || got[0] != want {
					t.Errorf("UpsertMany: keys %v, %v; want %s", got, err, want)
				}
				got, err = tbl.UpdateMany(ctx, tx, []string{"qty"}, []map[string]any{{"qty": 4}}, []map[string]any{pk})
				if err != nil || len(got) != 1 || got[0] != want {
					t.Errorf("UpdateMany: keys %v, %v; want %s", got, err, want)
				}
				return pgx.ErrTxClosed // roll back: the next style starts from an empty table
			})
			if err != nil && err != pgx.ErrTxClosed {
				t.Fatal(err)
			}
		})
	}
}
