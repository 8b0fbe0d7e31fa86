package transform

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/syncapi"
)

var contact = row(
	"id", `7`, "first_name", `"ada"`, "last_name", `"Lovelace"`, "email", `"ada@example.com"`,
	"phone", `null`, "balance", `"12345678901234567890.10"`, "visits", `9007199254740993`,
	"tags", `{"vip":true,"score":1.5}`, "created_at", `"2024-03-01T10:20:30.123456Z"`, "note", `"say \"hi\""`,
)

func TestMapFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		spec Spec
		ev   *cdc.Event
		want string // JSON of the fields
	}{
		{"columns as is, numbers exact",
			Spec{Columns: config.Columns{Allow: []string{"id", "balance", "visits", "tags", "note"}}},
			insert(contact),
			`{"balance":"12345678901234567890.10","id":7,"note":"say \"hi\"","tags":{"score":1.5,"vip":true},"visits":9007199254740993}`},
		{"deny hides columns",
			Spec{Columns: config.Columns{Deny: []string{"email", "phone", "balance", "visits", "tags", "created_at", "note"}}},
			insert(contact),
			`{"first_name":"ada","id":7,"last_name":"Lovelace"}`},
		{"column, const and expression sources",
			Spec{Map: map[string]config.Source{
				"email":  col("email"),
				"source": cst("CRM"),
				"rank":   cst(json.Number("3")),
				"active": cst(true),
				"owner":  cst(nil),
				"name":   ex(`upper(after.first_name) + ' ' + after.last_name`),
			}},
			insert(contact),
			`{"active":true,"email":"ada@example.com","name":"ADA Lovelace","owner":null,"rank":3,"source":"CRM"}`},
		{"nested targets",
			Spec{Map: map[string]config.Source{
				"account.name":       col("last_name"),
				"account.owner.mail": col("email"),
				"id":                 col("id"),
			}},
			insert(contact),
			`{"account":{"name":"Lovelace","owner":{"mail":"ada@example.com"}},"id":7}`},
		{"null column stays null",
			Spec{Map: map[string]config.Source{"phone": col("phone"), "p2": ex("after.phone")}},
			insert(contact),
			`{"p2":null,"phone":null}`},
		{"helpers",
			Spec{Map: map[string]config.Source{
				"full":    ex(`concat(after.first_name, " ", after.phone, after.last_name)`),
				"first":   ex(`coalesce(after.phone, after.email)`),
				"lower":   ex(`lower(after.last_name)`),
				"nil_up":  ex(`upper(after.phone)`),
				"trimmed": ex(`trim("  x ")`),
				"day":     ex(`format_time(after.created_at, "date")`),
				"ms":      ex(`format_time(after.created_at, "unix_ms")`),
				"num":     ex(`number(after.balance) > 1000`),
				"str":     ex(`string(after.id) + "!"`),
				"js":      ex(`json(after.tags)`),
				"sum":     ex(`after.id + 1`),
				"half":    ex(`after.id / 2`),
				"op":      ex(`op + ":" + table + ":" + string(key.id)`),
			}},
			insert(contact),
			`{"day":"2024-03-01","first":"ada@example.com","full":"ada Lovelace","half":3.5,"js":"{\"score\":1.5,\"vip\":true}",` +
				`"lower":"lovelace","ms":1709288430123,"nil_up":null,"num":true,"op":"create:public.contacts:7","str":"7!","sum":8,"trimmed":"x"}`},
		{"unchanged TOAST column is absent, never null",
			Spec{Map: map[string]config.Source{"note": col("note"), "upper_note": ex("upper(after.note)"), "id": col("id")}},
			&cdc.Event{Op: cdc.OpUpdate, Schema: "public", Table: "contacts", Key: row("id", "7"),
				After: row("id", "7"), Unchanged: []string{"note"}},
			`{"id":7}`},
		{"a partial change leaves out what it does not carry",
			Spec{Map: map[string]config.Source{"first_name": col("firstname"), "email": col("email"),
				"full": ex(`after.firstname + " " + after.lastname`), "src": cst("crm")}},
			&cdc.Event{Op: cdc.OpUpdate, Schema: "crm", Table: "contacts", Key: row("id", `"9"`),
				After: row("firstname", `"Ada"`), Partial: true},
			`{"first_name":"Ada","src":"crm"}`},
		{"unchanged TOAST column without a map",
			Spec{},
			&cdc.Event{Op: cdc.OpUpdate, Schema: "public", Table: "contacts", Key: row("id", "7"),
				After: row("id", "7", "name", `"x"`), Unchanged: []string{"note"}},
			`{"id":7,"name":"x"}`},
		{"delete reads before",
			Spec{Map: map[string]config.Source{"email": col("email"), "id": col("id"), "gone": ex("after == nil")}},
			&cdc.Event{Op: cdc.OpDelete, Schema: "public", Table: "contacts", Key: row("id", "7"),
				Before: row("id", "7", "email", `"a@x"`)},
			`{"email":"a@x","gone":true,"id":7}`},
		{"computed column names and whole rows",
			Spec{Map: map[string]config.Source{"n": ex(`after["first" + "_name"]`), "k": ex("json(key)")}},
			insert(contact),
			`{"k":"{\"id\":7}","n":"ada"}`},
		{"nil rows read as nil",
			Spec{Map: map[string]config.Source{"old": ex("before.email"), "safe": ex("before?.tags?.vip")}},
			insert(contact),
			`{"old":null,"safe":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec, ok, err := mustNew(t, tt.spec, nil).Map(context.Background(), tt.ev)
			if err != nil || !ok {
				t.Fatalf("Map: ok=%v err=%v", ok, err)
			}
			got, err := json.Marshal(rec.Fields)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("fields\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestRecordIdentity(t *testing.T) {
	t.Parallel()
	ev := &cdc.Event{Op: cdc.OpRead, Schema: "sales", Table: "orders", Key: row("id", "1", "region", `"eu"`),
		After: row("id", "1", "region", `"eu"`)}
	rec, ok, err := mustNew(t, Spec{}, nil).Map(context.Background(), ev)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if rec.Key != `{"id":1,"region":"eu"}` || rec.Object != "orders" || rec.Op != cdc.OpCreate || rec.Event != ev {
		t.Errorf("record %+v", rec)
	}
	rec, _, _ = mustNew(t, Spec{Object: "Order"}, nil).Map(context.Background(), &cdc.Event{Op: cdc.OpUpdate, Table: "t", After: row("a", "1")})
	if rec.Key != "null" || rec.Object != "Order" || rec.Op != cdc.OpUpdate {
		t.Errorf("keyless record %+v", rec)
	}
}

func TestOps(t *testing.T) {
	t.Parallel()
	r := row("id", "1")
	events := map[cdc.Op]*cdc.Event{}
	for _, op := range []cdc.Op{cdc.OpCreate, cdc.OpRead, cdc.OpUpdate, cdc.OpDelete, cdc.OpTruncate} {
		events[op] = &cdc.Event{Op: op, Table: "t", Key: r, Before: r, After: r}
	}
	events[cdc.OpTruncate].After, events[cdc.OpTruncate].Key = nil, nil
	tests := []struct {
		ops  []string
		want string // ops mapped, in c r u d t order
	}{
		{nil, "crud"},
		{[]string{"create"}, "cr"},
		{[]string{"update", "delete"}, "ud"},
		{[]string{"delete"}, "d"},
	}
	for _, tt := range tests {
		m := mustNew(t, Spec{Ops: tt.ops}, nil)
		var got strings.Builder
		for _, op := range []cdc.Op{cdc.OpCreate, cdc.OpRead, cdc.OpUpdate, cdc.OpDelete, cdc.OpTruncate} {
			rec, ok, err := m.Map(context.Background(), events[op])
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				got.WriteString(op.String())
				if want := map[cdc.Op]cdc.Op{cdc.OpRead: cdc.OpCreate}[op]; want != 0 && rec.Op != want {
					t.Errorf("op %s mapped to %s", op, rec.Op)
				}
			}
		}
		if got.String() != tt.want {
			t.Errorf("ops %v: mapped %q, want %q", tt.ops, got.String(), tt.want)
		}
	}
}

func TestFilter(t *testing.T) {
	t.Parallel()
	const crossing = "after.stock < after.reorder_point && before.stock >= before.reorder_point"
	stock := func(s, p string) cdc.Row { return row("sku", `"A1"`, "stock", s, "reorder_point", p) }
	tests := []struct {
		name   string
		filter string
		ev     *cdc.Event
		want   bool
	}{
		{"crosses below", crossing, update(stock("12", "10"), stock("9", "10")), true},
		{"already below", crossing, update(stock("8", "10"), stock("7", "10")), false},
		{"rises above", crossing, update(stock("9", "10"), stock("12", "10")), false},
		{"insert below: before is nil, comparison false", crossing, insert(stock("3", "10")), false},
		{"insert below with explicit guard", "after.stock < after.reorder_point && (before == nil || before.stock >= before.reorder_point)",
			insert(stock("3", "10")), true},
		{"before has key columns only", crossing, update(row("sku", `"A1"`), stock("9", "10")), false},
		{"delete: after is nil", crossing, &cdc.Event{Op: cdc.OpDelete, Table: "t", Key: stock("1", "2")[:1], Before: stock("1", "2")}, false},
		{"null column", "after.stock < 10", insert(stock("null", "10")), false},
		{"nil result is false", "after.active", insert(row("id", "1", "active", "null")), false},
		{"numeric string against number", `after.price > 100`, insert(row("id", "1", "price", `"100.50"`)), true},
		{"op", `op == "create"`, insert(stock("1", "1")), true},
		{"lookup-free string ops", `after.sku startsWith "A"`, insert(stock("1", "1")), true},
		// json and jsonb columns are strings holding the JSON text
		{"inside a jsonb column", `fromJSON(after.meta).vip == true`, insert(row("id", "1", "meta", `"{\"vip\": true}"`)), true},
		{"jsonb null is not SQL NULL", `after.meta != nil && fromJSON(after.meta) == nil`, insert(row("id", "1", "meta", `"null"`)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, ok, err := mustNew(t, Spec{Filter: tt.filter}, nil).Map(context.Background(), tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.want {
				t.Errorf("filter %q: ok=%v, want %v", tt.filter, ok, tt.want)
			}
		})
	}
}

func TestEvaluationErrorsArePermanent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec Spec
		want string
	}{
		{Spec{Filter: `after.name`}, `filter: result is string, not a boolean`},
		{Spec{Filter: `after.name < 3`}, `filter: cannot compare string with int (convert with number(...) or string(...))`},
		{Spec{Map: map[string]config.Source{"x": ex("after.id + after.missing")}}, `map.x: invalid operation: int + <nil>`},
		{Spec{Map: map[string]config.Source{"x": ex(`upper(after.id)`)}}, `map.x: upper: expected a string, got int (convert with string(...))`},
	}
	for _, tt := range tests {
		_, _, err := mustNew(t, tt.spec, nil).Map(context.Background(), insert(row("id", "1", "name", `"n"`)))
		if err == nil || !cdc.IsPermanent(err) || err.Error() != tt.want {
			t.Errorf("got %v (permanent %v), want %s", err, cdc.IsPermanent(err), tt.want)
		}
	}
}

func TestNowIsUTC(t *testing.T) {
	t.Parallel()
	rec, _, err := mustNew(t, Spec{Map: map[string]config.Source{"at": ex("now()")}}, nil).Map(context.Background(), insert(row("id", "1")))
	if err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339Nano, rec.Fields["at"].(string))
	if err != nil || time.Since(at) > time.Minute || !strings.HasSuffix(rec.Fields["at"].(string), "Z") {
		t.Errorf("now() = %v (%v)", rec.Fields["at"], err)
	}
}

var _ syncapi.Mapper = (*Mapper)(nil)

func TestReads(t *testing.T) {
	m := mustNew(t, Spec{Map: map[string]config.Source{
		"a": col("email"), "b": ex(`after.firstname + after.lastname`), "c": cst(1), "d": col("email"),
	}}, nil)
	if got := strings.Join(m.Reads(), ","); got != "email,firstname,lastname" {
		t.Fatalf("Reads = %s", got)
	}
	if got := mustNew(t, Spec{}, nil).Reads(); got != nil {
		t.Fatalf("no map: Reads = %v, want nil (every column)", got)
	}
	if got := mustNew(t, Spec{Map: map[string]config.Source{"k": ex(`json(after)`)}}, nil).Reads(); got != nil {
		t.Fatalf("whole row: Reads = %v, want nil", got)
	}
}
