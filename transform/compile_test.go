package transform

import (
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/config"
)

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	customer := []*config.Lookup{{Name: "customer", Table: "public.customers", Key: map[string]string{"id": "after.customer_id"}, Columns: []string{"email"}}}
	tests := []struct {
		name string
		spec Spec
		want string // every problem, one per line
	}{
		{"unknown name", Spec{Filter: "afterr.stock < 1"},
			"filter: does not compile: unknown name afterr (column 1)"},
		{"syntax", Spec{Map: map[string]config.Source{"name": ex("upper(after.first_name")}},
			"map.name: does not compile: unexpected token EOF (column 22)"},
		{"multi-line position", Spec{Filter: "after.a > 1 &&\n  nope()"},
			"filter: does not compile: unknown name nope (line 2, column 3)"},
		{"wrong argument count", Spec{Map: map[string]config.Source{"d": ex(`format_time(after.at)`)}},
			"map.d: does not compile: not enough arguments to call format_time (column 1)"},
		{"filter not boolean", Spec{Filter: `1 + 2`},
			"filter: must be a boolean expression, not int"},
		{"unknown lookup", Spec{Lookups: customer, Map: map[string]config.Source{"e": ex("lookup.custmer.email")}},
			`map.e: unknown lookup "custmer" (did you mean "customer"?)`},
		{"no lookups", Spec{Filter: `lookup.customer == nil`},
			`filter: unknown lookup "customer" (no lookups are available here)`},
		{"lookup key uses a lookup", Spec{Lookups: []*config.Lookup{{Name: "a", Table: "public.a", Key: map[string]string{"id": "lookup.a.id"}, Columns: []string{"x"}}}},
			`lookups[0].key.id: unknown lookup "a" (no lookups are available here)`},
		{"hidden column in expression", Spec{Columns: config.Columns{Deny: []string{"ssn"}}, Map: map[string]config.Source{"s": ex(`after.ssn`)}},
			`map.s: column "ssn" is hidden by columns.allow or columns.deny`},
		{"hidden column source", Spec{Columns: config.Columns{Allow: []string{"id"}}, Map: map[string]config.Source{"e": col("email")}},
			`map.e: column "email" is hidden by columns.allow or columns.deny`},
		{"value and object", Spec{Map: map[string]config.Source{"account": col("a"), "account.name": col("b")}},
			"map.account.name: conflicts with map.account: a field cannot be both a value and an object"},
		{"bad path", Spec{Map: map[string]config.Source{"a..b": col("a")}},
			`map.a..b: "a..b" is not a field path (names joined by single dots)`},
		{"empty source", Spec{Map: map[string]config.Source{"a": {}}},
			`map.a: required: a column name, {const: value} or {expr: "..."}`},
		{"bad op", Spec{Ops: []string{"create", "upsert"}},
			`ops[1]: "upsert" is not one of create, update, delete`},
		{"several at once", Spec{Filter: "x", Map: map[string]config.Source{"a": ex("y"), "b": ex("after.b")}},
			"filter: does not compile: unknown name x (column 1)\nmap.a: does not compile: unknown name y (column 1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tt.spec, &countingSource{}, zerolog.Nop())
			if err == nil {
				t.Fatalf("no error, want %s", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", err, tt.want)
			}
			for _, fe := range fieldErrors(err) {
				if fe.Path == "" || strings.Contains(fe.Msg, "\n") {
					t.Errorf("problem without a path or on several lines: %+v", fe)
				}
			}
		})
	}
}

func TestLookupsNeedASource(t *testing.T) {
	t.Parallel()
	spec := Spec{Lookups: []*config.Lookup{{Name: "c", Table: "public.c", Key: map[string]string{"id": "after.c"}, Columns: []string{"x"}}}}
	if _, err := New(spec, nil, zerolog.Nop()); err == nil || err.Error() != "lookups: lookups need a database connection" {
		t.Errorf("got %v", err)
	}
}
