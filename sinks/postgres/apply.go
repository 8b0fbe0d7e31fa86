package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
)

// outcome is what became of one record.
type outcome int

const (
	applied outcome = iota
	skippedStale
	skippedTombstoned
	failed
	outcomes
)

// apply applies one record in a savepoint of tx. A record the table
// refuses is rolled back to the savepoint and reported in the Result; the
// returned error is transient and fails the batch.
func (w *Writer) apply(ctx context.Context, tx pgx.Tx, rec *delivery.Record) (delivery.Result, outcome, error) {
	res := delivery.Result{ExternalID: rec.ExternalID}
	match, key, err := w.matchValues(rec)
	if err != nil {
		res.Err = cdc.Permanent(err)
		return res, failed, nil
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return res, failed, classify("savepoint", err)
	}
	out, version, err := w.applyIn(ctx, sp, rec, match, key)
	if err != nil {
		if !cdc.IsPermanent(err) {
			return res, failed, err
		}
		if rbErr := sp.Rollback(ctx); rbErr != nil {
			return res, failed, classify("roll back to savepoint", rbErr)
		}
		res.Err = err
		return res, failed, nil
	}
	if err := sp.Commit(ctx); err != nil {
		return res, failed, classify("release savepoint", err)
	}
	if !version.IsZero() {
		res.Version = version.UTC().Format(time.RFC3339Nano)
	}
	return res, out, nil
}

// applyIn checks the record against the state of its key and applies it.
// It returns the newest version of the record that is now applied.
func (w *Writer) applyIn(ctx context.Context, tx pgx.Tx, rec *delivery.Record, match map[string]any, key string) (outcome, time.Time, error) {
	st, err := w.loadState(ctx, tx, key)
	if err != nil {
		return failed, time.Time{}, classify("apply "+w.cfg.Table, err)
	}
	s := stampOf(rec.Event)
	newer := !st.exists || s.version.IsZero() || st.version.IsZero() || s.after(stamp{st.version, st.eventID})
	switch {
	case st.tombstoned && rec.Op == cdc.OpUpdate,
		st.tombstoned && rec.Op != cdc.OpDelete && (s.version.IsZero() || !newer):
		return skippedTombstoned, st.version, nil
	case !newer:
		return skippedStale, st.version, nil
	}
	switch rec.Op {
	case cdc.OpCreate, cdc.OpUpdate, cdc.OpRead:
		err = w.upsert(ctx, tx, rec.Fields, match)
	case cdc.OpDelete:
		err = w.delete(ctx, tx, match)
	default:
		return failed, time.Time{}, cdc.Permanent(fmt.Errorf("apply %s: op %q is not supported", w.cfg.Table, rec.Op))
	}
	if err != nil {
		return failed, time.Time{}, classify(fmt.Sprintf("apply %s to %s", opName(rec.Op), w.cfg.Table), err)
	}
	if err := w.saveState(ctx, tx, key, s, rec.Op == cdc.OpDelete); err != nil {
		return failed, time.Time{}, classify("apply "+w.cfg.Table, err)
	}
	if s.version.IsZero() {
		return applied, st.version, nil
	}
	return applied, s.version, nil
}

func opName(op cdc.Op) string {
	if op == cdc.OpDelete {
		return "a delete"
	}
	return "an upsert"
}

// upsert inserts the record or updates only the fields it carries. Values
// go as untyped literals (simple protocol) that Postgres coerces to each
// column's type.
func (w *Writer) upsert(ctx context.Context, tx pgx.Tx, fields, match map[string]any) error {
	values := make(map[string]any, len(fields)+len(match))
	for c, v := range fields {
		values[c] = v
	}
	for c, v := range match {
		values[c] = v
	}
	cols := slices.Sorted(func(yield func(string) bool) {
		for c := range values {
			if !yield(c) {
				return
			}
		}
	})
	args := []any{pgx.QueryExecModeSimpleProtocol}
	names := make([]string, len(cols))
	params := make([]string, len(cols))
	var sets []string
	for i, c := range cols {
		lit, err := literal(values[c])
		if err != nil {
			return fmt.Errorf("column %q: %w", c, err)
		}
		args = append(args, lit)
		names[i] = pgx.Identifier{c}.Sanitize()
		params[i] = "$" + strconv.Itoa(i+1)
		if _, isMatch := match[c]; !isMatch {
			sets = append(sets, names[i]+" = EXCLUDED."+names[i])
		}
	}
	conflict := "DO NOTHING"
	if len(sets) > 0 {
		conflict = "DO UPDATE SET " + strings.Join(sets, ", ")
	}
	sql := "INSERT INTO " + w.target + " (" + strings.Join(names, ", ") + ") VALUES (" + strings.Join(params, ", ") +
		") ON CONFLICT (" + w.matchList() + ") " + conflict
	_, err := tx.Exec(ctx, sql, args...)
	return err
}

// delete applies the delete policy to the matched row.
func (w *Writer) delete(ctx context.Context, tx pgx.Tx, match map[string]any) error {
	if w.cfg.OnDelete == DeleteIgnore {
		return nil
	}
	args := []any{pgx.QueryExecModeSimpleProtocol}
	conds := make([]string, len(w.cfg.Match))
	for i, c := range w.cfg.Match {
		lit, err := literal(match[c])
		if err != nil {
			return fmt.Errorf("column %q: %w", c, err)
		}
		args = append(args, lit)
		conds[i] = fmt.Sprintf("%s = $%d", pgx.Identifier{c}.Sanitize(), i+1)
	}
	where := strings.Join(conds, " AND ")
	sql := "DELETE FROM " + w.target + " WHERE " + where
	if w.cfg.OnDelete == DeleteSoft {
		col := pgx.Identifier{w.cfg.SoftDeleteColumn}.Sanitize()
		sql = "UPDATE " + w.target + " SET " + col + " = now() WHERE " + where + " AND " + col + " IS NULL"
	}
	_, err := tx.Exec(ctx, sql, args...)
	return err
}

func (w *Writer) matchList() string {
	names := make([]string, len(w.cfg.Match))
	for i, c := range w.cfg.Match {
		names[i] = pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(names, ", ")
}

// matchValues returns the record's values of the match columns, from its
// Fields or else its Key, and the state key: their canonical JSON.
func (w *Writer) matchValues(rec *delivery.Record) (map[string]any, string, error) {
	var key map[string]any
	match := make(map[string]any, len(w.cfg.Match))
	canon := make(map[string]string, len(w.cfg.Match))
	for _, c := range w.cfg.Match {
		v, ok := rec.Fields[c]
		if !ok || v == nil {
			if key == nil && rec.Key != "" {
				dec := json.NewDecoder(bytes.NewReader([]byte(rec.Key)))
				dec.UseNumber()
				if err := dec.Decode(&key); err != nil {
					return nil, "", fmt.Errorf("apply to %s: record key is not a JSON object", w.cfg.Table)
				}
			}
			v, ok = key[c]
		}
		lit, err := literal(v)
		if !ok || v == nil || err != nil {
			return nil, "", fmt.Errorf("apply to %s: the record has no usable value for match column %q", w.cfg.Table, c)
		}
		match[c] = v
		canon[c] = lit.(string)
	}
	b, err := json.Marshal(canon)
	if err != nil {
		return nil, "", err
	}
	return match, string(b), nil
}

// literal turns a value decoded by encoding/json into the text Postgres
// reads for a column: nil is NULL, objects and arrays are JSON (for json
// and jsonb columns).
func literal(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
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
		return nil, fmt.Errorf("value of type %T cannot be written", v)
	}
	return string(b), nil
}
