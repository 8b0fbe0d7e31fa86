package postgres

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/delivery"
)

// Regression: the primary key of a mixed-case table was looked up by its
// unquoted name, which Postgres folds to lower case, so every change to
// "OrderItems" was dead-lettered.
func TestWriterQuotedNames(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", `CREATE SCHEMA "Shop";
		CREATE TABLE "Shop"."OrderItems" ("Id" serial PRIMARY KEY, "order" text NOT NULL UNIQUE, "user" text, "Qty" int)`)
	cfg := DefaultConfig()
	cfg.URL, cfg.Table, cfg.Match = url, "Shop.OrderItems", []string{"order"}
	w := newWriter(t, "crm", cfg)
	item := func(op cdc.Op, sec int, id string, fields map[string]any) delivery.Record {
		r := rec(op, sec, id, fields)
		r.Object = "items"
		return r
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	read := func() (user string, qty int, n int) {
		t.Helper()
		err := conn.QueryRow(ctx, `SELECT COALESCE(max("user"), ''), COALESCE(max("Qty"), 0), count(*) FROM "Shop"."OrderItems" WHERE "order" = 'o-1'`).Scan(&user, &qty, &n)
		if err != nil {
			t.Fatal(err)
		}
		return user, qty, n
	}

	for _, r := range write(t, w, item(cdc.OpCreate, 1, "e1", map[string]any{"order": "o-1", "user": "ann", "Qty": json.Number("2")})) {
		if r.Err != nil {
			t.Fatalf("create: %v", r.Err)
		}
	}
	if user, qty, n := read(); user != "ann" || qty != 2 || n != 1 {
		t.Fatalf("after create: user %q qty %d rows %d", user, qty, n)
	}
	for _, r := range write(t, w, item(cdc.OpUpdate, 2, "e2", map[string]any{"order": "o-1", "Qty": json.Number("5")})) {
		if r.Err != nil {
			t.Fatalf("update: %v", r.Err)
		}
	}
	if user, qty, n := read(); user != "ann" || qty != 5 || n != 1 {
		t.Fatalf("after update: user %q qty %d rows %d", user, qty, n)
	}
	for _, r := range write(t, w, item(cdc.OpDelete, 3, "e3", map[string]any{"order": "o-1"})) {
		if r.Err != nil {
			t.Fatalf("delete: %v", r.Err)
		}
	}
	if _, _, n := read(); n != 0 {
		t.Fatalf("after delete: %d rows", n)
	}
}
