package transform

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/config"
)

const schemaSQL = `
CREATE TABLE customers (id int PRIMARY KEY, email text, name text, credit numeric, since timestamptz, prefs jsonb);
INSERT INTO customers VALUES (1, 'ann@example.com', 'Ann', 12345678901234567890.10, '2024-03-01 10:20:30.5+00', '{"lang":"en"}');
CREATE SCHEMA "Sales";
CREATE TABLE "Sales"."Order Items" ("Order Id" text, line int, "Unit Price" numeric, PRIMARY KEY ("Order Id", line));
INSERT INTO "Sales"."Order Items" VALUES ('o''1', 2, 9.99);
CREATE TABLE contacts (id int PRIMARY KEY, first_name text, last_name text, email text, customer_id int, external_id text);
CREATE TABLE "OrderItems" ("Id" int PRIMARY KEY, "order" text UNIQUE, "user" text, "Qty" int, note text);
CREATE TABLE nokey (email text UNIQUE, name text);
`

func TestPostgres(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", schemaSQL)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	src := NewPostgres(conn)

	t.Run("lookup", func(t *testing.T) {
		tests := []struct {
			name    string
			table   string
			key     map[string]any
			columns []string
			want    string // JSON of the row; null when missing
		}{
			{"int key", "public.customers", map[string]any{"id": 1}, []string{"email", "name"},
				`{"email":"ann@example.com","name":"Ann"}`},
			{"string key for an int column", "public.customers", map[string]any{"id": "1"}, []string{"name"},
				`{"name":"Ann"}`},
			{"exact values", "public.customers", map[string]any{"id": json.Number("1")}, []string{"credit", "since", "prefs"},
				`{"credit":12345678901234567890.10,"prefs":{"lang":"en"},"since":"2024-03-01T10:20:30.5+00:00"}`},
			{"missing row", "public.customers", map[string]any{"id": 2}, []string{"name"}, `null`},
			{"quoted identifiers and composite key", `Sales.Order Items`, map[string]any{"Order Id": "o'1", "line": 2},
				[]string{"Unit Price"}, `{"Unit Price":9.99}`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				row, err := src.Lookup(ctx, tt.table, tt.key, tt.columns)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := json.Marshal(row)
				if string(got) != tt.want {
					t.Errorf("got %s, want %s", got, tt.want)
				}
			})
		}
	})

	t.Run("mapper caches lookups", func(t *testing.T) {
		counted := &countingSource{next: src}
		m := mustNew(t, Spec{
			Lookups: customerLookup(10, time.Minute),
			Map:     map[string]config.Source{"email": ex("lookup.customer.email"), "total": col("total")},
		}, counted)
		for i, ev := range []*cdc.Event{order("1", "1"), order("2", "1"), order("3", "1")} {
			rec, _, err := m.Map(ctx, ev)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Fields["email"] != "ann@example.com" || rec.Fields["total"] != "99.90" {
				t.Errorf("event %d: fields %v", i, rec.Fields)
			}
		}
		if counted.count() != 1 {
			t.Errorf("%d queries for one customer, want 1", counted.count())
		}
	})

	t.Run("check schema", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "cdcd.yaml")
		src := strings.ReplaceAll(`postgres: {url: "URL"}
systems: {crm: {type: nokeys}}
pipelines:
  - name: ok
    from: contacts
    to: crm
    map: {email: email, name: {expr: "after.first_name + before.last_name"}}
  - name: bad
    from: contacts
    to: crm
    map:
      firstname: first_nme
      full: {expr: "concat(after.first_name, after.lastname)"}
    filter: key.idd != nil
    columns: {deny: [ssn]}
    link: {column: external_ids}
    lookups:
      - name: customer
        table: customers
        key: {idx: after.customer_id}
        columns: [email, nam]
      - name: gone
        table: nope
        key: {id: after.id}
        columns: [x]
  - name: missing
    from: public.nothing
    to: crm
`, "URL", url)
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		reg := testRegistry()
		reg.Checker(CheckSchema(ctx))
		_, err := config.Load(path, reg)
		want := []string{
			`:12:7: pipelines[1].map.firstname: unknown column "first_nme" in public.contacts (did you mean "first_name"?)`,
			`:13:7: pipelines[1].map.full: unknown column "lastname" in public.contacts (did you mean "last_name"?)`,
			`:14:5: pipelines[1].filter: unknown column "idd" in public.contacts (did you mean "id"?)`,
			`:15:22: pipelines[1].columns.deny[0]: unknown column "ssn" in public.contacts`,
			`:16:12: pipelines[1].link.column: unknown column "external_ids" in public.contacts (did you mean "external_id"?)`,
			`:20:15: pipelines[1].lookups[0].key.idx: unknown column "idx" in public.customers (did you mean "id"?)`,
			`:21:26: pipelines[1].lookups[0].columns[1]: unknown column "nam" in public.customers (did you mean "name"?)`,
			`:23:9: pipelines[1].lookups[1].table: table public.nope does not exist`,
			`:27:5: pipelines[2].from: table public.nothing does not exist`,
		}
		checkProblems(t, err, want)
	})

	t.Run("check inbound targets", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "cdcd.yaml")
		src := strings.ReplaceAll(`postgres: {url: "URL"}
systems: {crm: {type: nokeys, webhook: {}}}
pipelines:
  - name: ok
    from: crm
    object: items
    to: public.OrderItems
    match: [order]
    map: {order: ref, user: owner, Qty: quantity}
  - name: bad
    from: crm
    object: items
    to: public.OrderItems
    match: [user]
    map: {qty: quantity}
    on_delete: soft
  - name: nokey
    from: crm
    object: contacts
    to: nokey
    match: [email]
  - name: missing
    from: crm
    object: contacts
    to: orderitems
    match: [order]
`, "URL", url)
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		reg := registryOf(func() config.Validator { return &noKeys{} })
		reg.Checker(CheckSchema(ctx))
		_, err := config.Load(path, reg)
		checkProblems(t, err, []string{
			`:10:5: pipelines[1].soft_delete_column: unknown column "deleted_at" in public.OrderItems`,
			`:14:5: pipelines[1].match: no unique index or constraint of public.OrderItems is on exactly user; the upsert needs one (CREATE UNIQUE INDEX ON public.OrderItems (...))`,
			`:15:11: pipelines[1].map.qty: unknown column "qty" in public.OrderItems (did you mean "Qty"?)`,
			`:20:5: pipelines[2].to: table public.nokey has no primary key; cdcd links its rows to the system's records by it (ALTER TABLE ... ADD PRIMARY KEY)`,
			`:25:5: pipelines[3].to: table public.orderitems does not exist`,
		})
	})
}

// checkProblems asserts that err lists exactly the problems want, each
// given by its end.
func checkProblems(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(lines), len(want), err)
	}
	for i := range min(len(lines), len(want)) {
		if !strings.HasSuffix(lines[i], want[i]) {
			t.Errorf("problem %d:\n got %s\nwant …%s", i, lines[i], want[i])
		}
	}
}
