package pgwal

import (
	"fmt"
	"strings"
)

// Table is a schema-qualified table name.
type Table struct{ Schema, Name string }

// ParseTable accepts "schema.table" or "table" (meaning public.table).
func ParseTable(s string) (Table, error) {
	schema, name, ok := strings.Cut(s, ".")
	if !ok {
		schema, name = "public", s
	}
	if schema == "" || name == "" || strings.Contains(name, ".") {
		return Table{}, fmt.Errorf("table %q: want schema.table", s)
	}
	return Table{schema, name}, nil
}

func (t Table) String() string { return t.Schema + "." + t.Name }

func (t Table) quoted() string { return quoteIdent(t.Schema) + "." + quoteIdent(t.Name) }
