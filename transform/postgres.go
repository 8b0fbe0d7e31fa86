package transform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc"
)

// Querier runs a query returning at most one row. A *pgxpool.Pool is one;
// so is a *pgx.Conn, which is not safe for concurrent use.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Postgres is a LookupSource reading the local database. Queries are
// parameterised and identifiers quoted. Values come back as Postgres
// renders them in JSON: numbers exact (json.Number), timestamps ISO 8601,
// json and jsonb embedded.
type Postgres struct {
	pool Querier
}

// NewPostgres returns a LookupSource on pool (a *pgxpool.Pool); the
// caller owns the pool.
func NewPostgres(pool Querier) *Postgres { return &Postgres{pool: pool} }

// Lookup implements LookupSource.
func (p *Postgres) Lookup(ctx context.Context, table string, key map[string]any, columns []string) (map[string]any, error) {
	sql, args, err := lookupQuery(table, key, columns)
	if err != nil {
		return nil, cdc.Permanent(err)
	}
	var text []byte
	err = p.pool.QueryRow(ctx, sql, args...).Scan(&text)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", table, err)
	}
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var row map[string]any
	if err := dec.Decode(&row); err != nil {
		return nil, fmt.Errorf("decode row of %s: %w", table, err)
	}
	return row, nil
}

// lookupQuery builds the query of one lookup. Key values are sent as
// text, which Postgres converts to each key column's type, so a key of any
// type matches as it would in SQL.
func lookupQuery(table string, key map[string]any, columns []string) (string, []any, error) {
	schema, name, ok := strings.Cut(table, ".")
	if !ok || len(key) == 0 || len(columns) == 0 {
		return "", nil, fmt.Errorf("lookup in %q: need a schema.table, a key and columns", table)
	}
	var b strings.Builder
	b.WriteString("SELECT row_to_json(t)::text FROM (SELECT ")
	for i, c := range columns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pgx.Identifier{c}.Sanitize())
	}
	b.WriteString(" FROM ")
	b.WriteString(pgx.Identifier{schema, name}.Sanitize())
	b.WriteString(" WHERE ")
	args := make([]any, 0, len(key))
	for i, c := range sortedKeys(key) {
		if i > 0 {
			b.WriteString(" AND ")
		}
		s, err := toString(key[c])
		if err != nil {
			return "", nil, fmt.Errorf("lookup key %s: %w", c, err)
		}
		args = append(args, s)
		fmt.Fprintf(&b, "%s = $%d", pgx.Identifier{c}.Sanitize(), len(args))
	}
	b.WriteString(" LIMIT 1) t")
	return b.String(), args, nil
}

// schema is the live column list of each table, in table order, and the
// column sets of its unique indexes.
type schema struct {
	columns map[string][]string
	// unique lists, per table, the columns of each unique index an
	// ON CONFLICT can use (no expressions, no predicate); the primary
	// key's first.
	unique  map[string][][]string
	primary map[string]bool
}

const schemaQuery = `SELECT n.nspname || '.' || c.relname, a.attname
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname || '.' || c.relname = ANY($1)
ORDER BY 1, a.attnum`

const uniqueQuery = `SELECT n.nspname || '.' || c.relname, i.indisprimary,
	array(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
		JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.ord)::text[]
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE i.indisunique AND i.indpred IS NULL AND NOT (0 = ANY (i.indkey::int2[]))
	AND n.nspname || '.' || c.relname = ANY($1)
ORDER BY 1, i.indisprimary DESC, i.indexrelid`

func loadSchema(ctx context.Context, conn *pgx.Conn, tables []string) (schema, error) {
	s := schema{columns: map[string][]string{}, unique: map[string][][]string{}, primary: map[string]bool{}}
	rows, err := conn.Query(ctx, schemaQuery, tables)
	if err != nil {
		return s, fmt.Errorf("read columns: %w", err)
	}
	var table, column string
	_, err = pgx.ForEachRow(rows, []any{&table, &column}, func() error {
		s.columns[table] = append(s.columns[table], column)
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("read columns: %w", err)
	}
	rows, err = conn.Query(ctx, uniqueQuery, tables)
	if err != nil {
		return s, fmt.Errorf("read unique indexes: %w", err)
	}
	var (
		primary bool
		cols    []string
	)
	_, err = pgx.ForEachRow(rows, []any{&table, &primary, &cols}, func() error {
		s.unique[table] = append(s.unique[table], slices.Clone(cols))
		s.primary[table] = s.primary[table] || primary
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("read unique indexes: %w", err)
	}
	return s, nil
}

func (s schema) has(table, column string) bool { return slices.Contains(s.columns[table], column) }

func (s schema) exists(table string) bool {
	_, ok := s.columns[table]
	return ok
}

// uniqueOn reports whether a unique index of table has exactly cols.
func (s schema) uniqueOn(table string, cols []string) bool {
	want := slices.Sorted(slices.Values(cols))
	for _, u := range s.unique[table] {
		if slices.Equal(slices.Sorted(slices.Values(u)), want) {
			return true
		}
	}
	return false
}
