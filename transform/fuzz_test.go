package transform

import (
	"context"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/config"
)

// FuzzCompile builds mappers from arbitrary config strings and maps an
// event with those that compile: neither may panic.
func FuzzCompile(f *testing.F) {
	for _, seed := range [][4]string{
		{"after.stock < after.reorder_point && before.stock >= before.reorder_point", "upper(after.first_name) + ' ' + after.last_name", "account.name", "email"},
		{"lookup.c.email == nil", "format_time(after.created_at, 'unix_ms')", "a..b", "first name"},
		{"", "coalesce(before?.x, after['y'], 1)", "", ""},
		{"(", "concat(", ".", "."},
		{"1 < 'a'", "json(after)", "x", "after.x"},
		{"map(1..3, # > 1)[0]", "number(after.balance) * 2", "a.b.c", "b"},
		{"now() > now()", "string(key)", "k", "k"},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	log := zerolog.Nop()
	src := &countingSource{}
	f.Fuzz(func(t *testing.T, filter, expression, target, column string) {
		spec := Spec{
			Filter: filter,
			Map:    map[string]config.Source{target: config.ExprSource(expression), target + ".c": config.ColumnSource(column)},
			Lookups: []*config.Lookup{{Name: "c", Table: "public.c", Key: map[string]string{"id": expression},
				Columns: []string{"email"}, Cache: config.Cache{Size: 2}}},
			Columns: config.Columns{Deny: []string{column}},
		}
		m, err := New(spec, src, log)
		if err != nil {
			if len(fieldErrors(err)) == 0 {
				t.Fatal("error without problems")
			}
			return
		}
		m.Map(context.Background(), insert(contact))
		m.Map(context.Background(), update(contact[:2], contact))
	})
}
