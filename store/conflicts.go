package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/conflict"
)

// Conflict statuses.
const (
	ConflictResolved  = "resolved"
	ConflictPending   = "pending"   // held; a rule may still decide it
	ConflictEscalated = "escalated" // held until someone resolves it
)

// Conflict is one row of cdcd.conflicts: a record changed on both sides
// since the values they last agreed on.
type Conflict struct {
	ID            int64             `json:"id"`
	Pipeline      string            `json:"pipeline"`
	System        string            `json:"system"`
	Object        string            `json:"object"`
	ExternalID    string            `json:"external_id"`
	LocalTable    string            `json:"local_table"`
	LocalKey      string            `json:"local_key"`
	Fields        []string          `json:"fields"`
	Columns       map[string]string `json:"columns"`
	Base          conflict.Values   `json:"base"`
	Local         conflict.Values   `json:"local"`
	Remote        conflict.Values   `json:"remote"`
	LocalAt       *time.Time        `json:"local_at,omitempty"`
	RemoteAt      *time.Time        `json:"remote_at,omitempty"`
	RemoteVersion string            `json:"remote_version,omitempty"`
	Result        conflict.Values   `json:"result,omitempty"`
	Proposal      conflict.Values   `json:"proposal,omitempty"`
	Rule          string            `json:"rule"`
	Status        string            `json:"status"`
	ResolvedBy    string            `json:"resolved_by,omitempty"`
	ResolvedAt    *time.Time        `json:"resolved_at,omitempty"`
	DetectedAt    time.Time         `json:"detected_at"`
}

// Open reports whether the conflict still holds its record.
func (c *Conflict) Open() bool { return c.Status != ConflictResolved }

// Input is the conflict as the policy engine sees it: every field it
// holds a column for, so that the system's changes of other fields that
// joined it while it held the record merge too.
func (c *Conflict) Input() conflict.Input {
	fields := c.Fields
	if len(c.Columns) > 0 {
		fields = slices.Sorted(maps.Keys(c.Columns))
	}
	in := conflict.Input{Pipeline: c.Pipeline, System: c.System, Fields: fields, Base: c.Base,
		Local: conflict.Side{Values: c.Local}, Remote: conflict.Side{Values: c.Remote, Version: c.RemoteVersion}}
	if c.LocalAt != nil {
		in.Local.Time = *c.LocalAt
	}
	if c.RemoteAt != nil {
		in.Remote.Time = *c.RemoteAt
	}
	return in
}

// ConflictColumns are cdcd.conflicts' columns in Conflict's order.
const ConflictColumns = `id, pipeline, system, object, external_id, local_table, local_key, fields, columns,
	base, local, remote, local_at, remote_at, coalesce(remote_version, ''), result, proposal, rule, status,
	coalesce(resolved_by, ''), resolved_at, detected_at`

// ScanConflict reads a row of ConflictColumns.
func ScanConflict(row pgx.CollectableRow) (Conflict, error) {
	var c Conflict
	var columns, base, local, remote, result, proposal []byte
	err := row.Scan(&c.ID, &c.Pipeline, &c.System, &c.Object, &c.ExternalID, &c.LocalTable, &c.LocalKey, &c.Fields, &columns,
		&base, &local, &remote, &c.LocalAt, &c.RemoteAt, &c.RemoteVersion, &result, &proposal, &c.Rule, &c.Status,
		&c.ResolvedBy, &c.ResolvedAt, &c.DetectedAt)
	if err != nil {
		return c, err
	}
	for _, f := range []struct {
		raw []byte
		dst any
	}{{columns, &c.Columns}, {base, &c.Base}, {local, &c.Local}, {remote, &c.Remote}, {result, &c.Result}, {proposal, &c.Proposal}} {
		if len(f.raw) == 0 {
			continue
		}
		if err := json.Unmarshal(f.raw, f.dst); err != nil {
			return c, fmt.Errorf("conflict %d: %w", c.ID, err)
		}
	}
	return c, nil
}

// ListConflicts returns the conflicts with status (all when empty), newest
// first, at most limit (no limit when 0).
func (s *Store) ListConflicts(ctx context.Context, status string, limit int) ([]Conflict, error) {
	q := "SELECT " + ConflictColumns + " FROM cdcd.conflicts"
	var args []any
	switch status {
	case "":
	case "open":
		q += " WHERE status <> 'resolved'"
	default:
		args = append(args, status)
		q += " WHERE status = $1"
	}
	q += " ORDER BY id DESC"
	if limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	rows, _ := s.pool.Query(ctx, q, args...)
	cs, err := pgx.CollectRows(rows, ScanConflict)
	if err != nil {
		return nil, fmt.Errorf("list conflicts: %w", err)
	}
	return cs, nil
}

// GetConflict returns conflict id; a missing id is an error wrapping
// ErrNotFound.
func (s *Store) GetConflict(ctx context.Context, id int64) (Conflict, error) {
	rows, _ := s.pool.Query(ctx, "SELECT "+ConflictColumns+" FROM cdcd.conflicts WHERE id = $1", id)
	c, err := pgx.CollectExactlyOneRow(rows, ScanConflict)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("conflict %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("get conflict %d: %w", id, err)
	}
	return c, nil
}

// ErrResolvedOtherwise is returned when a conflict already resolved is
// resolved again with another result.
var ErrResolvedOtherwise = errors.New("already resolved with another result")

// ErrBusy means a resolution collided with changes to its record each
// time it was tried (deadlocks, serialization failures); trying again
// later may succeed.
var ErrBusy = errors.New("the record kept changing while it was being resolved; try again")

// ResolveConflict decides an open conflict by choice (local, remote or
// merged, with the merged values of its fields) on behalf of by. The
// result is written to the local row in a transaction without an origin,
// so the capture reader takes it to every system, the one in conflict
// included, through the normal sink path; the conflict row records the
// result, the choice and who made it. Resolving a resolved conflict with
// the same result again changes nothing.
func (s *Store) ResolveConflict(ctx context.Context, id int64, choice string, merged conflict.Values, by string) (Conflict, error) {
	if by == "" {
		by = "operator"
	}
	var c Conflict
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		c, err = lockConflict(ctx, tx, id)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("conflict %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("resolve conflict %d: %w", id, err)
		}
		d, err := conflict.Apply(c.Input(), choice, merged)
		if err != nil {
			return fmt.Errorf("resolve conflict %d: %w", id, err)
		}
		result := pick(d.Result, d.Conflicts)
		if !c.Open() {
			if c.Result.Equal(result) {
				return nil
			}
			return fmt.Errorf("conflict %d: %w (%s)", id, ErrResolvedOtherwise, c.Rule)
		}
		if err := applyLocal(ctx, tx, c.LocalTable, c.LocalKey, c.Columns, toLocal(d)); err != nil {
			return fmt.Errorf("resolve conflict %d: %w", id, err)
		}
		if err := knownUpTo(ctx, tx, &c); err != nil {
			return fmt.Errorf("resolve conflict %d: %w", id, err)
		}
		rb, _ := json.Marshal(result)
		rows, _ := tx.Query(ctx, `UPDATE cdcd.conflicts SET status = 'resolved', result = $2, rule = $3, resolved_by = $4, resolved_at = now()
			WHERE id = $1 RETURNING `+ConflictColumns, id, rb, "manual:"+choice, by)
		if c, err = pgx.CollectExactlyOneRow(rows, ScanConflict); err != nil {
			return fmt.Errorf("resolve conflict %d: %w", id, err)
		}
		return nil
	})
	if err != nil && rolledBack(err) {
		return c, fmt.Errorf("resolve conflict %d: %w (%w)", id, ErrBusy, err)
	}
	return c, err
}

// lockConflict locks conflict id, and before it the link of its record,
// in tx. The inbound apply path locks a record's link, then its open
// conflict, then the local row; whoever takes more than one of them takes
// them in that order, or two such transactions deadlock. A missing id is
// pgx.ErrNoRows.
func lockConflict(ctx context.Context, tx pgx.Tx, id int64) (Conflict, error) {
	var system, object, extID string
	err := tx.QueryRow(ctx, `SELECT system, object, external_id FROM cdcd.conflicts WHERE id = $1`, id).Scan(&system, &object, &extID)
	if err != nil {
		return Conflict{}, err
	}
	if _, err := tx.Exec(ctx, `SELECT FROM cdcd.links WHERE system = $1 AND object = $2 AND external_id = $3 FOR UPDATE`,
		system, object, extID); err != nil {
		return Conflict{}, fmt.Errorf("lock the link: %w", err)
	}
	rows, _ := tx.Query(ctx, "SELECT "+ConflictColumns+" FROM cdcd.conflicts WHERE id = $1 FOR UPDATE", id)
	return pgx.CollectExactlyOneRow(rows, ScanConflict)
}

// pick returns the values of fields.
func pick(v conflict.Values, fields []string) conflict.Values {
	out := make(conflict.Values, len(fields))
	for _, f := range fields {
		if x, ok := v[f]; ok {
			out[f] = x
		}
	}
	return out
}

// toLocal is what decision d writes to the local row: the decided value
// of every conflicting field, and the system's changes of the other
// fields (which joined the conflict while it held the record). Local
// changes of other fields are the row's already, maybe newer than the
// conflict's copy.
func toLocal(d conflict.Decision) conflict.Values {
	out := pick(d.Result, d.Conflicts)
	maps.Copy(out, d.ToLocal)
	return out
}

// applyLocal sets the local columns of fields (values in the system's
// names) on the row of table whose primary key localKey holds, converting
// each JSON value to its column's type. Every column is set even when it
// holds the value already, so the change is captured and delivered.
func applyLocal(ctx context.Context, tx pgx.Tx, table, localKey string, columns map[string]string, values conflict.Values) error {
	schema, name, ok := strings.Cut(table, ".")
	if !ok {
		schema, name = "public", table
	}
	target := pgx.Identifier{schema, name}.Sanitize()
	row := map[string]json.RawMessage{}
	for _, f := range slices.Sorted(maps.Keys(values)) {
		col, ok := columns[f]
		if !ok {
			return fmt.Errorf("field %q has no local column to apply it to", f)
		}
		row[col] = values[f]
	}
	if len(row) == 0 {
		return nil
	}
	var key map[string]json.RawMessage
	if err := json.Unmarshal([]byte(localKey), &key); err != nil || len(key) == 0 {
		return fmt.Errorf("local key %s is not a JSON object", localKey)
	}
	var sets, conds []string
	for _, c := range slices.Sorted(maps.Keys(row)) {
		q := pgx.Identifier{c}.Sanitize()
		sets = append(sets, q+" = r."+q)
	}
	for _, c := range slices.Sorted(maps.Keys(key)) {
		q := pgx.Identifier{c}.Sanitize()
		conds = append(conds, "t."+q+" = k."+q)
	}
	rb, _ := json.Marshal(row)
	kb, _ := json.Marshal(key)
	sql := "UPDATE " + target + " AS t SET " + strings.Join(sets, ", ") +
		" FROM jsonb_populate_record(NULL::" + target + ", $1::jsonb) AS r, jsonb_populate_record(NULL::" + target + ", $2::jsonb) AS k" +
		" WHERE " + strings.Join(conds, " AND ")
	tag, err := tx.Exec(ctx, sql, rb, kb)
	if err != nil {
		return fmt.Errorf("apply the resolution to %s: %w", table, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("the local record %s %s no longer exists", table, localKey)
	}
	return nil
}

// knownUpTo moves the version of the conflict's link to the remote change
// it decided on, when that is later: the decision took the system's record
// as of then into account, so an update of it is no longer held back as
// written over an unseen change.
func knownUpTo(ctx context.Context, tx pgx.Tx, c *Conflict) error {
	if c.RemoteAt == nil {
		return nil
	}
	var version string
	err := tx.QueryRow(ctx, `SELECT coalesce(version, '') FROM cdcd.links WHERE system = $1 AND object = $2 AND external_id = $3 FOR UPDATE`,
		c.System, c.Object, c.ExternalID).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if v, err := time.Parse(time.RFC3339Nano, version); err == nil && !c.RemoteAt.After(v) {
		return nil
	}
	return SetLinkVersion(ctx, tx, c.System, c.Object, c.ExternalID, *c.RemoteAt)
}
