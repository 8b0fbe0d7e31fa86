// Package target writes the rows of the local table that a system's
// changes are applied to: upserts by the match columns, updates and
// deletes by the primary key, and reads of a row's values as captured
// events carry them. Values go as untyped literals (simple protocol) that
// Postgres coerces to each column's type. It knows nothing of links,
// states or conflicts: the Postgres writer decides what to write.
package target

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc"
)

// Table is a local table with a primary key.
type Table struct {
	name   string // schema.table, as configured
	quoted string // quoted schema.table
	pk     []column
	types  map[string]string // every column's type, as a cast names it
	// commitTimes: the server tracks commit timestamps, which tell when a
	// row last changed.
	commitTimes bool
}

// column is a primary key column and its type.
type column struct {
	name string
	oid  uint32
}

// Split splits schema.table; ok is false unless both parts are there.
func Split(name string) (schema, table string, ok bool) {
	schema, table, ok = strings.Cut(name, ".")
	return schema, table, ok && schema != "" && table != "" && !strings.Contains(table, ".")
}

// Open reads the primary key of the table name (schema.table) and whether
// the server tracks commit timestamps. The table is found by its exact
// schema and name, as the config spells them (a regclass cast would fold
// unquoted capitals). A table without a primary key is a permanent error.
func Open(ctx context.Context, conn *pgx.Conn, name string) (*Table, error) {
	schema, rel, ok := Split(name)
	if !ok {
		return nil, cdc.Permanent(fmt.Errorf("%q is not schema.table", name))
	}
	rows, _ := conn.Query(ctx, `SELECT a.attname, a.atttypid::int8
		FROM pg_index i
		JOIN pg_class c ON c.oid = i.indrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
		WHERE n.nspname = $1 AND c.relname = $2 AND i.indisprimary
		ORDER BY array_position(i.indkey::int2[], a.attnum)`, schema, rel)
	var (
		col string
		oid int64
		pk  []column
	)
	_, err := pgx.ForEachRow(rows, []any{&col, &oid}, func() error {
		pk = append(pk, column{col, uint32(oid)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the primary key of %s: %w", name, err)
	}
	if len(pk) == 0 {
		return nil, cdc.Permanent(fmt.Errorf("%s does not exist or has no primary key; cdcd links its rows to the system's records by it (create the table with one, or add one)", name))
	}
	t := &Table{name: name, quoted: pgx.Identifier{schema, rel}.Sanitize(), pk: pk, types: map[string]string{}}
	rows, _ = conn.Query(ctx, `SELECT a.attname, a.atttypid::regtype::text FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped`, schema, rel)
	var typ string
	if _, err := pgx.ForEachRow(rows, []any{&col, &typ}, func() error {
		t.types[col] = typ
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", name, err)
	}
	if err := conn.QueryRow(ctx, `SELECT current_setting('track_commit_timestamp') = 'on'`).Scan(&t.commitTimes); err != nil {
		return nil, fmt.Errorf("read track_commit_timestamp: %w", err)
	}
	return t, nil
}

// Name returns the table's schema.table as configured.
func (t *Table) Name() string { return t.name }
