package backfill

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/pgtext"
	"github.com/cdcd-dev/cdcd/cdc/pgwal"
)

// table is what a chunk read needs to know of a table.
type table struct {
	schema, name string
	quoted       string
	pk           []string      // primary-key columns, in index order
	pkList       string        // the quoted primary-key columns, comma-separated
	rel          *cdc.Relation // the columns as the stream describes them, once read
	cols         []pgconn.FieldDescription
	keyCol       []int
}

// describe reads t's primary key.
func describe(ctx context.Context, conn *pgconn.PgConn, t pgwal.Table) (*table, error) {
	res := conn.ExecParams(ctx, `SELECT a.attname FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
		WHERE i.indrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass AND i.indisprimary
		ORDER BY array_position(i.indkey::int2[], a.attnum)`,
		[][]byte{[]byte(t.Schema), []byte(t.Name)}, nil, nil, nil).Read()
	if res.Err != nil {
		return nil, fmt.Errorf("read primary key of %s: %w", t, res.Err)
	}
	tb := &table{schema: t.Schema, name: t.Name, quoted: quoteIdent(t.Schema) + "." + quoteIdent(t.Name)}
	for _, r := range res.Rows {
		tb.pk = append(tb.pk, string(r[0]))
	}
	if len(tb.pk) == 0 {
		return nil, fmt.Errorf("table %s has no primary key: a backfill reads it in key order; add one (ALTER TABLE %s ADD PRIMARY KEY (...))", t, tb.quoted)
	}
	q := make([]string, len(tb.pk))
	for i, c := range tb.pk {
		q[i] = quoteIdent(c)
	}
	tb.pkList = strings.Join(q, ", ")
	return tb, nil
}

// estimate is how many rows the backfill reads: the planner's estimate
// for the whole table, a count under a where clause.
func estimate(ctx context.Context, conn *pgconn.PgConn, t *table, where string) (int64, error) {
	sql := `SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = '` + strings.ReplaceAll(t.quoted, "'", "''") + `'::regclass`
	if where != "" {
		sql = `SELECT count(*) FROM ` + t.quoted + ` WHERE (` + where + `)`
	}
	res := conn.ExecParams(ctx, sql, nil, nil, nil, nil).Read()
	if res.Err != nil {
		return 0, fmt.Errorf("estimate rows of %s: %w", t.quoted, res.Err)
	}
	if len(res.Rows) == 0 {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(res.Rows[0][0]), 10, 64)
	if n == 0 && where == "" {
		// Never analyzed: count.
		res = conn.ExecParams(ctx, `SELECT count(*) FROM `+t.quoted, nil, nil, nil, nil).Read()
		if res.Err != nil {
			return 0, fmt.Errorf("count rows of %s: %w", t.quoted, res.Err)
		}
		n, err = strconv.ParseInt(string(res.Rows[0][0]), 10, 64)
	}
	return n, err
}

// readChunk writes the chunk's low watermark and reads up to limit rows
// after the key after (nil: from the start) in key order, as op r events
// for pipelines, in one round trip: the watermark commits first (without
// waiting for its flush: the high watermark's flushes it), then the rows
// are read in a statement of their own, so its snapshot follows the low
// watermark. It returns the rows with the last key read as text values.
func readChunk(ctx context.Context, conn *pgconn.PgConn, t *table, low string, after []string, where string, limit int, pipelines []string) ([]cdc.Event, []string, error) {
	var b strings.Builder
	if low != "" {
		b.WriteString("BEGIN; SET LOCAL synchronous_commit = off; SELECT pg_logical_emit_message(true, '" + pgwal.WatermarkPrefix + "', " + quoteLiteral(low) + "); COMMIT; ")
	}
	b.WriteString("SELECT * FROM " + t.quoted)
	var conds []string
	if after != nil {
		lits := make([]string, len(after))
		for i, v := range after {
			lits[i] = quoteLiteral(v)
		}
		conds = append(conds, "("+t.pkList+") > ("+strings.Join(lits, ", ")+")")
	}
	if where != "" {
		conds = append(conds, "("+where+")")
	}
	if len(conds) > 0 {
		b.WriteString(" WHERE " + strings.Join(conds, " AND "))
	}
	b.WriteString(" ORDER BY " + t.pkList + " LIMIT " + strconv.Itoa(limit))
	mrr := conn.Exec(ctx, b.String())
	var events []cdc.Event
	var last []string
	var err error
	for n := 0; mrr.NextResult(); n++ {
		rr := mrr.ResultReader()
		if low != "" && n < 4 {
			if _, err := rr.Close(); err != nil {
				_ = mrr.Close()
				return nil, nil, fmt.Errorf("write watermark: %w", err)
			}
			continue
		}
		events, last, err = readRows(t, rr, pipelines)
		if err != nil {
			_ = mrr.Close()
			return nil, nil, err
		}
	}
	if err := mrr.Close(); err != nil {
		return nil, nil, fmt.Errorf("read a chunk of %s: %w", t.quoted, err)
	}
	if t.rel == nil && t.cols != nil {
		if t.rel, err = relationOf(ctx, conn, t.cols, t.keyCol); err != nil {
			return nil, nil, err
		}
	}
	for i := range events {
		events[i].Relation = t.rel
	}
	return events, last, nil
}

// readRows turns a result's rows into events.
func readRows(t *table, rr *pgconn.ResultReader, pipelines []string) ([]cdc.Event, []string, error) {
	fds := rr.FieldDescriptions()
	keyCol := make([]int, len(t.pk))
	for i, k := range t.pk {
		keyCol[i] = -1
		for j := range fds {
			if fds[j].Name == k {
				keyCol[i] = j
			}
		}
	}
	rules := make([]*pgtext.Rule, len(fds))
	for j := range fds {
		if r, ok := pgtext.BuiltinRule(fds[j].DataTypeOID); ok {
			rules[j] = &r
		}
	}
	var enc pgtext.Encoder
	var events []cdc.Event
	var last []string
	for rr.NextRow() {
		vals := rr.Values()
		size := 0
		for _, v := range vals {
			size += len(v) + len(v)>>3 + 8
		}
		buf := make([]byte, 0, size)
		fields := make([]cdc.Field, len(vals)+len(t.pk))
		for j, v := range vals {
			start := len(buf)
			switch {
			case v == nil:
				buf = append(buf, "null"...)
			case rules[j] == nil:
				buf = cdc.AppendJSONString(buf, v)
			default:
				buf = enc.Append(buf, *rules[j], v)
			}
			fields[j] = cdc.Field{Name: fds[j].Name, Value: buf[start:len(buf):len(buf)]}
		}
		key := fields[len(vals):]
		for i, j := range keyCol {
			if j < 0 {
				return nil, nil, fmt.Errorf("read %s: primary-key column %q not in the result", t.quoted, t.pk[i])
			}
			key[i] = fields[j]
		}
		events = append(events, cdc.Event{
			Op: cdc.OpRead, Source: cdc.SourcePostgres, Schema: t.schema, Table: t.name,
			Key: cdc.Row(key), After: cdc.Row(fields[:len(vals):len(vals)]), Pipelines: pipelines,
		})
		if last == nil {
			last = make([]string, len(keyCol))
		}
		for i, j := range keyCol {
			last[i] = string(vals[j])
		}
	}
	cols := make([]pgconn.FieldDescription, len(fds))
	copy(cols, fds)
	if _, err := rr.Close(); err != nil {
		return nil, nil, fmt.Errorf("read a chunk of %s: %w", t.quoted, err)
	}
	if t.rel == nil && len(events) > 0 {
		t.cols, t.keyCol = cols, keyCol
	}
	return events, last, nil
}

// relationOf describes the result's columns as the stream does: built-in
// types by their name, a domain by its base type's, others by theirs.
func relationOf(ctx context.Context, conn *pgconn.PgConn, cols []pgconn.FieldDescription, keyCol []int) (*cdc.Relation, error) {
	rel := &cdc.Relation{Columns: make([]cdc.Column, len(cols))}
	for i, c := range cols {
		rel.Columns[i].Name = c.Name
		if name, ok := pgtext.TypeName(c.DataTypeOID); ok {
			rel.Columns[i].Type = name
			continue
		}
		res := conn.ExecParams(ctx, `SELECT coalesce(b.typname, t.typname) FROM pg_type t
			LEFT JOIN pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype WHERE t.oid = $1`,
			[][]byte{[]byte(strconv.FormatUint(uint64(c.DataTypeOID), 10))}, nil, nil, nil).Read()
		if res.Err != nil {
			return nil, fmt.Errorf("read type of column %s: %w", c.Name, res.Err)
		}
		if len(res.Rows) == 1 {
			rel.Columns[i].Type = string(res.Rows[0][0])
		}
	}
	for _, j := range keyCol {
		rel.Columns[j].Key = true
	}
	return rel, nil
}

// emit writes a watermark into the WAL in a transaction of its own.
func emit(ctx context.Context, conn *pgconn.PgConn, content string) error {
	res := conn.ExecParams(ctx, `SELECT pg_logical_emit_message(true, '`+pgwal.WatermarkPrefix+`', $1)`,
		[][]byte{[]byte(content)}, nil, nil, nil).Read()
	if res.Err != nil {
		return fmt.Errorf("write watermark: %w", res.Err)
	}
	return nil
}

// quoteLiteral quotes s as an SQL string literal, whatever
// standard_conforming_strings says.
func quoteLiteral(s string) string {
	return "E'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", "''") + "'"
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
