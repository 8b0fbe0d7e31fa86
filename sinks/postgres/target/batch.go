package target

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc/pgtext"
)

// ErrNotBatchable is returned by the batch statements when the rows name
// a column the table did not have when it was opened: the row-by-row
// statements report that for the row that names it.
var ErrNotBatchable = errors.New("a column the table did not have when it was opened")

// Batch functions send each column's values as one text array, cast to
// the column's type without its modifier (as an untyped literal is read),
// so that a value too long for a varchar(n) is refused, not cut. A row
// the table refuses fails the whole statement; callers then write the
// rows one by one.

// arrays holds a statement's arguments: one text array per column.
type arrays struct {
	t    *Table
	args []any
	cols []string // the unnest column of each array: c1, c2, ...
}

// add appends a column of values; it returns the expression that reads
// it, cast to the column col's type.
func (a *arrays) add(col string, values []any) (string, error) {
	typ, ok := a.t.types[col]
	if !ok {
		return "", ErrNotBatchable
	}
	texts := make([]*string, len(values))
	for i, v := range values {
		lit, err := Literal(v)
		if err != nil {
			return "", fmt.Errorf("column %q: %w", col, err)
		}
		if s, ok := lit.(string); ok {
			texts[i] = &s
		}
	}
	a.args = append(a.args, texts)
	name := "c" + strconv.Itoa(len(a.args))
	a.cols = append(a.cols, name)
	return "v." + name + "::" + typ, nil
}

// from is the FROM item of the arrays, with ord, each row's place.
func (a *arrays) from() string {
	params := make([]string, len(a.args))
	for i := range a.args {
		params[i] = "$" + strconv.Itoa(i+1) + "::text[]"
	}
	return "unnest(" + strings.Join(params, ", ") + ") WITH ORDINALITY AS v(" + strings.Join(a.cols, ", ") + ", ord)"
}

// valuesOf returns the values of col in rows.
func valuesOf(rows []map[string]any, col string) []any {
	out := make([]any, len(rows))
	for i, r := range rows {
		out[i] = r[col]
	}
	return out
}

// keys reads ord and the primary key that a statement's RETURNING
// v.ord, t.returning() reported, into the local key of each row (""
// for the rows not reported).
func (t *Table) keys(rows pgx.Rows, n int) ([]string, error) {
	out := make([]string, n)
	texts := make([]*string, len(t.pk))
	var ord int64
	dest := []any{&ord}
	for i := range texts {
		dest = append(dest, &texts[i])
	}
	_, err := pgx.ForEachRow(rows, dest, func() error {
		if ord < 1 || ord > int64(n) {
			return fmt.Errorf("row %d reported of %d", ord, n)
		}
		out[ord-1] = t.keyJSON(texts)
		return nil
	})
	return out, err
}

// UpdateMany sets, in one statement, the columns cols of each row whose
// primary key is pks[i] to rows[i]'s values, and returns each row's local
// key ("" when there is no row). The primary keys must be distinct.
func (t *Table) UpdateMany(ctx context.Context, tx pgx.Tx, cols []string, rows, pks []map[string]any) ([]string, error) {
	out := make([]string, len(rows))
	b := &pgx.Batch{}
	if err := t.QueueUpdateMany(b, cols, rows, pks, out); err != nil {
		return nil, err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// QueueUpdateMany queues UpdateMany's statement in b, for a caller that
// sends it with others in one round trip: once b's results are read,
// out[i] holds row i's local key. out must be as long as rows.
func (t *Table) QueueUpdateMany(b *pgx.Batch, cols []string, rows, pks []map[string]any, out []string) error {
	a := &arrays{t: t}
	isKey := map[string]bool{}
	var conds, sets []string
	for _, c := range t.pk {
		isKey[c.name] = true
		expr, err := a.add(c.name, valuesOf(pks, c.name))
		if err != nil {
			return err
		}
		conds = append(conds, "t."+pgx.Identifier{c.name}.Sanitize()+" = "+expr)
	}
	for _, c := range cols {
		if isKey[c] {
			continue
		}
		expr, err := a.add(c, valuesOf(rows, c))
		if err != nil {
			return err
		}
		sets = append(sets, pgx.Identifier{c}.Sanitize()+" = "+expr)
	}
	if len(sets) == 0 { // nothing to set: still report the rows
		first := pgx.Identifier{t.pk[0].name}.Sanitize()
		sets = append(sets, first+" = t."+first)
	}
	sql := "UPDATE " + t.quoted + " AS t SET " + strings.Join(sets, ", ") + " FROM " + a.from() +
		" WHERE " + strings.Join(conds, " AND ") + " RETURNING v.ord, " + t.qualifiedReturning("t")
	b.Queue(sql, a.args...).Query(func(r pgx.Rows) error {
		got, err := t.keys(r, len(rows))
		copy(out, got)
		return err
	})
	return nil
}

// UpsertMany inserts each row, or updates the columns it carries besides
// match in the row that holds its match columns' values, in one
// statement, and returns each row's local key. Every row carries cols,
// and no two rows the same match values.
func (t *Table) UpsertMany(ctx context.Context, tx pgx.Tx, cols, match []string, rows []map[string]any) ([]string, error) {
	a := &arrays{t: t}
	isMatch := map[string]bool{}
	for _, c := range match {
		isMatch[c] = true
	}
	names, exprs := make([]string, len(cols)), make([]string, len(cols))
	var sets []string
	byCol := map[string]string{}
	for i, c := range cols {
		expr, err := a.add(c, valuesOf(rows, c))
		if err != nil {
			return nil, err
		}
		names[i], exprs[i], byCol[c] = pgx.Identifier{c}.Sanitize(), expr, expr
		if !isMatch[c] {
			sets = append(sets, names[i]+" = EXCLUDED."+names[i])
		}
	}
	conflict := make([]string, len(match))
	var join []string
	for i, c := range match {
		conflict[i] = pgx.Identifier{c}.Sanitize()
		join = append(join, "i."+conflict[i]+" = "+byCol[c])
	}
	if len(sets) == 0 { // touch the row so that RETURNING reports it
		sets = append(sets, conflict[0]+" = EXCLUDED."+conflict[0])
	}
	// RETURNING cannot name the row's place in the arrays: the rows
	// written are joined back to it by their match values.
	sql := "WITH i AS (INSERT INTO " + t.quoted + " (" + strings.Join(names, ", ") + ") SELECT " + strings.Join(exprs, ", ") +
		" FROM " + a.from() + " ORDER BY v.ord ON CONFLICT (" + strings.Join(conflict, ", ") + ") DO UPDATE SET " + strings.Join(sets, ", ") +
		" RETURNING " + strings.Join(conflict, ", ") + ", " + t.returningAs() + ") SELECT v.ord, " + t.keyColumns("i") +
		" FROM i JOIN " + a.from() + " ON " + strings.Join(join, " AND ")
	r, err := tx.Query(ctx, sql, a.args...)
	if err != nil {
		return nil, err
	}
	return t.keys(r, len(rows))
}

// ReadMany locks the rows whose primary keys are pks and returns, per
// key, what Read returns: the values of columns (nil when the row is
// gone) and when the row last changed.
func (t *Table) ReadMany(ctx context.Context, tx pgx.Tx, pks []map[string]any, columns []string) ([][]json.RawMessage, []time.Time, error) {
	restore, err := pinReadSettings(ctx, tx)
	if err != nil {
		return nil, nil, err
	}
	defer restore()
	return t.ReadManyPinned(ctx, tx, pks, columns)
}

// ReadManyPinned is ReadMany in a transaction whose read settings are
// pinned already (QueuePinReadSettings).
func (t *Table) ReadManyPinned(ctx context.Context, tx pgx.Tx, pks []map[string]any, columns []string) ([][]json.RawMessage, []time.Time, error) {
	a := &arrays{t: t}
	var conds []string
	for _, c := range t.pk {
		expr, err := a.add(c.name, valuesOf(pks, c.name))
		if err != nil {
			return nil, nil, err
		}
		conds = append(conds, pgx.Identifier{c.name}.Sanitize()+" = "+expr)
	}
	cols := make([]string, len(columns))
	for i, c := range columns {
		cols[i] = "t." + pgx.Identifier{c}.Sanitize()
	}
	ts := "NULL::timestamptz"
	if t.commitTimes {
		ts = "pg_xact_commit_timestamp(t.xmin)"
	}
	// Each row is looked up by its primary key (LATERAL).
	sql := "SELECT " + strings.Join(append(append([]string{"v.ord"}, cols...), ts), ", ") + " FROM " + a.from() +
		" CROSS JOIN LATERAL (SELECT *, xmin FROM " + t.quoted + " WHERE " + strings.Join(conds, " AND ") + " FOR UPDATE) t"
	// The simple protocol gives every value as text, as captured events
	// read them.
	rows, err := tx.Query(ctx, sql, append([]any{pgx.QueryExecModeSimpleProtocol}, a.args...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("read the local rows: %w", err)
	}
	defer rows.Close()
	values, times := make([][]json.RawMessage, len(pks)), make([]time.Time, len(pks))
	for rows.Next() {
		raw, descs := rows.RawValues(), rows.FieldDescriptions()
		ord, err := strconv.Atoi(string(raw[0]))
		if err != nil || ord < 1 || ord > len(pks) {
			return nil, nil, fmt.Errorf("read the local rows: row %q reported", raw[0])
		}
		vs := make([]json.RawMessage, len(columns))
		for i := range columns {
			if raw[i+1] == nil {
				vs[i] = json.RawMessage("null")
				continue
			}
			vs[i] = pgtext.AppendJSON(nil, descs[i+1].DataTypeOID, raw[i+1])
		}
		values[ord-1] = vs
		if s := raw[len(columns)+1]; s != nil {
			if p, err := time.Parse("2006-01-02 15:04:05.999999Z07", string(s)); err == nil {
				times[ord-1] = p
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read the local rows: %w", err)
	}
	return values, times, nil
}

// qualifiedReturning is returning() with the columns of alias.
func (t *Table) qualifiedReturning(alias string) string {
	cols := make([]string, len(t.pk))
	for i, c := range t.pk {
		cols[i] = keyText(alias+"."+pgx.Identifier{c.name}.Sanitize(), c.oid)
	}
	return strings.Join(cols, ", ")
}

// returningAs returns the primary key columns as text, named k1, k2...
func (t *Table) returningAs() string {
	cols := make([]string, len(t.pk))
	for i, c := range t.pk {
		cols[i] = keyText(pgx.Identifier{c.name}.Sanitize(), c.oid) + " AS k" + strconv.Itoa(i+1)
	}
	return strings.Join(cols, ", ")
}

// keyColumns names the columns returningAs made, of alias.
func (t *Table) keyColumns(alias string) string {
	cols := make([]string, len(t.pk))
	for i := range t.pk {
		cols[i] = alias + ".k" + strconv.Itoa(i+1)
	}
	return strings.Join(cols, ", ")
}
