package target

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// A table with a two-column key, one of them a timestamp, under quoted
// names: keys come back as captured events carry them (UTC, RFC 3339),
// and the writes and reads find the rows by them.
func TestTable(t *testing.T) {
	pg := cdctest.StartPostgres(t, "track_commit_timestamp = on")
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", `CREATE SCHEMA "Shop";
		CREATE TABLE "Shop"."Items" ("Region" text, at timestamptz, sku text NOT NULL UNIQUE, qty int, tags jsonb, gone_at timestamptz,
			PRIMARY KEY ("Region", at));
		CREATE TABLE nokey (id int)`)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET TimeZone = 'Asia/Kolkata'"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"public.nokey", "public.missing"} {
		if _, err := Open(ctx, conn, name); !cdc.IsPermanent(err) || !strings.Contains(err.Error(), "no primary key") {
			t.Errorf("open %s: %v, want a permanent error", name, err)
		}
	}
	tbl, err := Open(ctx, conn, "Shop.Items")
	if err != nil {
		t.Fatal(err)
	}
	inTx := func(fn func(tx pgx.Tx) error) {
		t.Helper()
		if err := pgx.BeginFunc(ctx, conn, fn); err != nil {
			t.Fatal(err)
		}
	}
	const key = `{"Region":"eu","at":"2026-01-02T03:04:05.000000Z"}`
	inTx(func(tx pgx.Tx) error {
		got, err := tbl.Upsert(ctx, tx, map[string]any{"Region": "eu", "at": "2026-01-02 08:34:05+05:30", "qty": json.Number("3"),
			"tags": []any{"a"}}, map[string]any{"sku": "A-1"})
		if err != nil || got != key {
			t.Fatalf("upsert: key %s, %v; want %s", got, err, key)
		}
		// Again by the match column: only the fields it carries change.
		if got, err = tbl.Upsert(ctx, tx, map[string]any{"Region": "eu", "at": "2026-01-02T03:04:05Z", "qty": 4.0},
			map[string]any{"sku": "A-1"}); err != nil || got != key {
			t.Fatalf("second upsert: key %s, %v", got, err)
		}
		pk, err := KeyValues(got)
		if err != nil {
			t.Fatal(err)
		}
		values, at, err := tbl.Read(ctx, tx, pk, []string{"qty", "tags", "at", "gone_at"})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{`4`, `"[\"a\"]"`, `"2026-01-02T03:04:05.000000Z"`, `null`}
		for i := range want {
			if string(values[i]) != want[i] {
				t.Errorf("read value %d: %s, want %s", i, values[i], want[i])
			}
		}
		if !at.IsZero() {
			t.Errorf("uncommitted row has a commit time %s", at)
		}
		if got, found, err := tbl.Update(ctx, tx, map[string]any{"qty": nil}, pk); err != nil || !found || got != key {
			t.Fatalf("update: %s %v %v", got, found, err)
		}
		if _, found, err := tbl.Update(ctx, tx, map[string]any{"qty": 1}, map[string]any{"Region": "us", "at": "2026-01-02T03:04:05Z"}); err != nil || found {
			t.Fatalf("update of no row: found %v, %v", found, err)
		}
		return nil
	})
	// Committed, the row tells when it changed; a soft delete marks it once.
	inTx(func(tx pgx.Tx) error {
		pk, _ := KeyValues(key)
		if _, at, err := tbl.Read(ctx, tx, pk, []string{"qty"}); err != nil || at.IsZero() {
			t.Errorf("committed row: time %v, %v; want its commit time", at, err)
		}
		if err := tbl.Delete(ctx, tx, map[string]any{"sku": "A-1"}, "gone_at"); err != nil {
			return err
		}
		values, _, err := tbl.Read(ctx, tx, pk, []string{"gone_at"})
		if err != nil || string(values[0]) == "null" {
			t.Errorf("soft delete: gone_at %s, %v", values, err)
		}
		if err := tbl.Delete(ctx, tx, pk, ""); err != nil {
			return err
		}
		if values, _, err := tbl.Read(ctx, tx, pk, []string{"qty"}); err != nil || values != nil {
			t.Errorf("deleted row read: %s, %v; want nothing", values, err)
		}
		return nil
	})
}

func TestLiteral(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		v    any
		want any
	}{
		{nil, nil}, {"x", "x"}, {json.Number("12345678901234567890"), "12345678901234567890"}, {1.5, "1.5"},
		{true, "true"}, {7, "7"}, {map[string]any{"a": 1.0}, `{"a":1}`},
	} {
		if got, err := Literal(tt.v); err != nil || got != tt.want {
			t.Errorf("Literal(%#v) = %#v, %v; want %#v", tt.v, got, err, tt.want)
		}
	}
	if _, err := Literal("a\x00b"); !cdc.IsPermanent(err) {
		t.Errorf("a NUL: %v, want a permanent error", err)
	}
}
