package postgres

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/conflict"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// Regression: the primary key of a mixed-case table was looked up by its
// unquoted name, which Postgres folds to lower case, so every change to
// "OrderItems" was dead-lettered.
func TestWriterQuotedNames(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", `CREATE SCHEMA "Shop";
		CREATE TABLE "Shop"."OrderItems" ("Id" serial PRIMARY KEY, "order" text NOT NULL UNIQUE, "user" text, "Qty" int)`)
	migrate(t, url)
	cfg := DefaultConfig()
	cfg.URL, cfg.Table, cfg.Match = url, "Shop.OrderItems", []string{"order"}
	w := newWriter(t, "crm", cfg)
	item := func(op cdc.Op, sec int, id string, fields map[string]any) syncapi.Record {
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

// A linked record of "OrderItems": updates find the row by its primary
// key ("Id") through the link, and conflicts read and resolve "Qty",
// "order" and "user" there.
func TestWriterQuotedNamesLinked(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", `CREATE TABLE "OrderItems" ("Id" serial PRIMARY KEY, "order" text NOT NULL UNIQUE, "user" text, "Qty" int)`)
	migrate(t, url)
	cfg := DefaultConfig()
	cfg.URL, cfg.Table, cfg.Match = url, "public.OrderItems", []string{"order"}
	w, err := New("crm", cfg, Inbound{Conflicts: &Conflicts{
		Pipeline: "items-in", Policy: conflict.Policy{Rules: []conflict.Rule{{Kind: conflict.KindPrefer, Side: "crm"}}},
		Columns: map[string]string{"ref": "order", "owner": "user", "quantity": "Qty"},
	}}, config.Env{Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(context.Background()) })
	item := func(op cdc.Op, sec int, id string, fields map[string]any) syncapi.Record {
		r := rec(op, sec, id, fields)
		r.Object, r.Event.Schema, r.Event.Table = "items", "crm", "items"
		r.Event.Key = cdc.Row{{Name: "id", Value: json.RawMessage(`"77"`)}}
		r.Event.After = nil
		for _, f := range []struct{ field, col string }{{"ref", "order"}, {"owner", "user"}, {"quantity", "Qty"}} {
			if v, ok := fields[f.col]; ok {
				b, _ := json.Marshal(v)
				r.Event.After = append(r.Event.After, cdc.Field{Name: f.field, Value: b})
			}
		}
		r.Key = string(cdc.AppendKey(nil, r.Event))
		return r
	}
	read := func() string {
		t.Helper()
		var s string
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if err := conn.QueryRow(context.Background(), `SELECT COALESCE(string_agg(concat_ws(' ', "order", "user", "Qty"), '; '), '') FROM "OrderItems"`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	check := func(res []syncapi.Result, want string) {
		t.Helper()
		if res[0].Err != nil {
			t.Fatal(res[0].Err)
		}
		if got := read(); got != want {
			t.Fatalf("row %q, want %q", got, want)
		}
	}
	check(write(t, w, item(cdc.OpCreate, 1, "e1", map[string]any{"order": "o-1", "user": "ann", "Qty": json.Number("1")})), "o-1 ann 1")
	// Linked: the update carries no match column and finds the row by "Id".
	check(write(t, w, item(cdc.OpUpdate, 2, "e2", map[string]any{"Qty": json.Number("2")})), "o-1 ann 2")
	// Changed on both sides since: a conflict, decided for the system.
	pg.Exec(t, "app", `UPDATE "OrderItems" SET "Qty" = 5, "user" = 'bob'`)
	check(write(t, w, item(cdc.OpUpdate, 3, "e3", map[string]any{"Qty": json.Number("3")})), "o-1 bob 3")
	check(write(t, w, item(cdc.OpDelete, 4, "e4", map[string]any{})), "")
}
