package target

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/pgtext"
)

// Update sets fields of the row whose primary key is pk and reports
// whether there was one, and its local key (the JSON of its primary key,
// as captured events carry it).
func (t *Table) Update(ctx context.Context, tx pgx.Tx, fields, pk map[string]any) (string, bool, error) {
	args := []any{pgx.QueryExecModeSimpleProtocol}
	arg := func(c string, v any) (string, error) {
		lit, err := Literal(v)
		if err != nil {
			return "", fmt.Errorf("column %q: %w", c, err)
		}
		args = append(args, lit)
		return "$" + strconv.Itoa(len(args)-1), nil
	}
	var sets, conds []string
	for _, c := range slices.Sorted(maps.Keys(fields)) {
		if _, isKey := pk[c]; isKey {
			continue
		}
		p, err := arg(c, fields[c])
		if err != nil {
			return "", false, err
		}
		sets = append(sets, pgx.Identifier{c}.Sanitize()+" = "+p)
	}
	for _, c := range slices.Sorted(maps.Keys(pk)) {
		p, err := arg(c, pk[c])
		if err != nil {
			return "", false, err
		}
		conds = append(conds, pgx.Identifier{c}.Sanitize()+" = "+p)
	}
	if len(sets) == 0 { // nothing to set: still report the row
		first := pgx.Identifier{t.pk[0].name}.Sanitize()
		sets = append(sets, first+" = "+first)
	}
	sql := "UPDATE " + t.quoted + " SET " + strings.Join(sets, ", ") + " WHERE " + strings.Join(conds, " AND ") +
		" RETURNING " + t.returning()
	localKey, err := t.scanKey(tx.QueryRow(ctx, sql, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	return localKey, err == nil, err
}

// Upsert inserts the record or updates only the fields it carries, and
// returns the local key of the row. match holds the match columns' values;
// they need a unique index or constraint, which ON CONFLICT uses.
func (t *Table) Upsert(ctx context.Context, tx pgx.Tx, fields, match map[string]any) (string, error) {
	values := make(map[string]any, len(fields)+len(match))
	maps.Copy(values, fields)
	maps.Copy(values, match)
	cols := slices.Sorted(maps.Keys(values))
	args := []any{pgx.QueryExecModeSimpleProtocol}
	names := make([]string, len(cols))
	params := make([]string, len(cols))
	var sets []string
	for i, c := range cols {
		lit, err := Literal(values[c])
		if err != nil {
			return "", fmt.Errorf("column %q: %w", c, err)
		}
		args = append(args, lit)
		names[i] = pgx.Identifier{c}.Sanitize()
		params[i] = "$" + strconv.Itoa(i+1)
		if _, isMatch := match[c]; !isMatch {
			sets = append(sets, names[i]+" = EXCLUDED."+names[i])
		}
	}
	matchCols := slices.Sorted(maps.Keys(match))
	conflict := make([]string, len(matchCols))
	for i, c := range matchCols {
		conflict[i] = pgx.Identifier{c}.Sanitize()
	}
	if len(sets) == 0 { // touch the row so that RETURNING reports it
		sets = append(sets, conflict[0]+" = EXCLUDED."+conflict[0])
	}
	sql := "INSERT INTO " + t.quoted + " (" + strings.Join(names, ", ") + ") VALUES (" + strings.Join(params, ", ") +
		") ON CONFLICT (" + strings.Join(conflict, ", ") + ") DO UPDATE SET " + strings.Join(sets, ", ") +
		" RETURNING " + t.returning()
	return t.scanKey(tx.QueryRow(ctx, sql, args...))
}

// Delete deletes the rows whose columns hold match's values. With
// softColumn set, it sets that column to now() instead, where it is NULL.
func (t *Table) Delete(ctx context.Context, tx pgx.Tx, match map[string]any, softColumn string) error {
	args := []any{pgx.QueryExecModeSimpleProtocol}
	cols := slices.Sorted(maps.Keys(match))
	conds := make([]string, len(cols))
	for i, c := range cols {
		lit, err := Literal(match[c])
		if err != nil {
			return fmt.Errorf("column %q: %w", c, err)
		}
		args = append(args, lit)
		conds[i] = fmt.Sprintf("%s = $%d", pgx.Identifier{c}.Sanitize(), i+1)
	}
	where := strings.Join(conds, " AND ")
	sql := "DELETE FROM " + t.quoted + " WHERE " + where
	if softColumn != "" {
		col := pgx.Identifier{softColumn}.Sanitize()
		sql = "UPDATE " + t.quoted + " SET " + col + " = now() WHERE " + where + " AND " + col + " IS NULL"
	}
	_, err := tx.Exec(ctx, sql, args...)
	return err
}

func (t *Table) returning() string {
	cols := make([]string, len(t.pk))
	for i, c := range t.pk {
		cols[i] = keyText(pgx.Identifier{c.name}.Sanitize(), c.oid)
	}
	return strings.Join(cols, ", ")
}

// keyText is the text of key column expr of type oid as captured events
// read it. The text of dates and timestamps follows the session's
// DateStyle and TimeZone, which the writer leaves as the user set them
// for the values it writes: a key's are formatted as ISO (UTC for a
// timestamptz) whatever they are. Infinities and BC dates keep the
// session's text.
func keyText(expr string, oid uint32) string {
	var format string
	switch oid {
	case pgtype.DateOID:
		format = "to_char(" + expr + ", 'YYYY-MM-DD')"
	case pgtype.TimestampOID:
		format = "to_char(" + expr + ", 'YYYY-MM-DD HH24:MI:SS.US')"
	case pgtype.TimestamptzOID:
		format = "to_char(" + expr + " AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'"
	default:
		return expr + "::text"
	}
	return "CASE WHEN isfinite(" + expr + ") AND " + expr + " >= '0001-01-01 00:00:00+00' THEN " + format + " ELSE " + expr + "::text END"
}

// scanKey reads the primary key a RETURNING t.returning() reported.
func (t *Table) scanKey(r pgx.Row) (string, error) {
	texts := make([]*string, len(t.pk))
	dest := make([]any, len(t.pk))
	for i := range texts {
		dest[i] = &texts[i]
	}
	if err := r.Scan(dest...); err != nil {
		return "", err
	}
	return t.keyJSON(texts), nil
}

// keyJSON returns the JSON of the primary key values, as captured events
// carry it, from their text forms.
func (t *Table) keyJSON(texts []*string) string {
	var b []byte
	b = append(b, '{')
	for i, c := range t.pk {
		if i > 0 {
			b = append(b, ',')
		}
		b = cdc.AppendJSONString(b, c.name)
		b = append(b, ':')
		if texts[i] == nil {
			b = append(b, "null"...)
		} else {
			b = pgtext.AppendJSON(b, c.oid, []byte(*texts[i]))
		}
	}
	return string(append(b, '}'))
}

// KeyValues decodes a local key's JSON into column values.
func KeyValues(localKey string) (map[string]any, error) {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader([]byte(localKey)))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("local key %q is not a JSON object", localKey)
	}
	return m, nil
}

// Literal turns a value decoded by encoding/json into the text Postgres
// reads for a column: nil is NULL, objects and arrays are JSON (for json
// and jsonb columns). A string holding a NUL is a permanent error: sent
// as text it would cut the statement short.
func Literal(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		if strings.IndexByte(x, 0) >= 0 {
			return nil, cdc.Permanent(errors.New("the value holds a NUL character (\\u0000), which Postgres cannot store in text; correct it in the system"))
		}
		return x, nil
	case json.Number:
		return x.String(), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case int, int32, int64, uint, uint32, uint64:
		return fmt.Sprint(x), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, cdc.Permanent(fmt.Errorf("value of type %T cannot be written", v))
	}
	return string(b), nil
}
