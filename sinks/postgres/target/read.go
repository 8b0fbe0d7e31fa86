package target

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc/pgtext"
)

// Read locks the row whose primary key is pk and returns the values of
// columns, in order, as captured events carry them (read as the capture
// reader reads them: UTC, ISO dates and intervals, every float digit),
// and when the row last changed (zero unless the server tracks commit
// timestamps). A row that is gone has no values (nil) and no time.
func (t *Table) Read(ctx context.Context, tx pgx.Tx, pk map[string]any, columns []string) ([]json.RawMessage, time.Time, error) {
	cols := make([]string, len(columns))
	for i, c := range columns {
		cols[i] = pgx.Identifier{c}.Sanitize()
	}
	ts := "NULL::timestamptz"
	if t.commitTimes {
		ts = "pg_xact_commit_timestamp(xmin)"
	}
	args := []any{pgx.QueryExecModeSimpleProtocol}
	var conds []string
	for _, k := range slices.Sorted(maps.Keys(pk)) {
		lit, err := Literal(pk[k])
		if err != nil {
			return nil, time.Time{}, err
		}
		args = append(args, lit)
		conds = append(conds, fmt.Sprintf("%s = $%d", pgx.Identifier{k}.Sanitize(), len(args)-1))
	}
	restore, err := pinReadSettings(ctx, tx)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer restore()
	sql := "SELECT " + strings.Join(append(cols, ts), ", ") + " FROM " + t.quoted + " WHERE " + strings.Join(conds, " AND ") + " FOR UPDATE"
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read the local row: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, time.Time{}, fmt.Errorf("read the local row: %w", err)
		}
		return nil, time.Time{}, nil
	}
	raw, descs := rows.RawValues(), rows.FieldDescriptions()
	values := make([]json.RawMessage, len(columns))
	for i := range columns {
		if raw[i] == nil {
			values[i] = json.RawMessage("null")
			continue
		}
		values[i] = pgtext.AppendJSON(nil, descs[i].DataTypeOID, raw[i])
	}
	var at time.Time
	if s := raw[len(columns)]; s != nil {
		if p, err := time.Parse("2006-01-02 15:04:05.999999Z07", string(s)); err == nil {
			at = p
		}
	}
	return values, at, rows.Err()
}
