package transform

import (
	"context"
	"testing"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
)

func benchEvent() *cdc.Event {
	before := row("id", "42", "email", `"ada@example.com"`, "first_name", `"ada"`, "last_name", `"Lovelace"`,
		"company", `"Analytical Engines"`, "stock", `12`, "reorder_point", `10`, "updated_at", `"2024-03-01T10:20:30.123456Z"`)
	after := row("id", "42", "email", `"ada@example.com"`, "first_name", `"ada"`, "last_name", `"Lovelace"`,
		"company", `"Analytical Engines"`, "stock", `9`, "reorder_point", `10`, "updated_at", `"2024-03-01T10:20:31.123456Z"`)
	return &cdc.Event{Op: cdc.OpUpdate, Schema: "public", Table: "contacts", Key: after[:1], Before: before, After: after}
}

// BenchmarkMap maps an 8-column update (report allocs/op).
func BenchmarkMap(b *testing.B) {
	specs := map[string]Spec{
		"columns": {},
		"map": {Object: "contacts", Map: map[string]config.Source{
			"email": col("email"), "firstname": col("first_name"), "lastname": col("last_name"),
			"company": col("company"), "source": cst("cdcd"),
		}},
		"expressions": {Object: "contacts",
			Filter: "after.stock < after.reorder_point && before.stock >= before.reorder_point",
			Map: map[string]config.Source{
				"email": col("email"), "name": ex(`upper(after.first_name) + " " + after.last_name`),
				"account.name": col("company"), "stock": ex("after.stock"),
			}},
	}
	for name, spec := range specs {
		b.Run(name, func(b *testing.B) {
			m := mustNew(b, spec, nil)
			ev := benchEvent()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, ok, err := m.Map(ctx, ev); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}
