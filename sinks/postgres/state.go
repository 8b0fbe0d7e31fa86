package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc"
)

// stateTable keeps, per (system, table, record key), the version of the
// newest change applied, per column the version of the change that last
// set it, and, after a delete, when it happened: the tombstone that stops
// a late update from resurrecting the record. It is written in the
// transaction that applies the change.
const stateTable = "cdcd.apply_state"

// requireState fails when the state table is missing: store's
// migrations make it, when cdcd starts on the database.
func requireState(ctx context.Context, conn *pgx.Conn) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", stateTable).Scan(&exists); err != nil {
		return fmt.Errorf("look up %s: %w", stateTable, err)
	}
	if !exists {
		return fmt.Errorf("%s does not exist: cdcd's migrations have not run on this database; start cdcd with postgres.url set to it, which applies them", stateTable)
	}
	return nil
}

// state is what was last applied to one record.
type state struct {
	exists     bool
	version    time.Time // of the newest change applied; zero when unknown
	eventID    string
	tombstoned bool // deleted within the tombstone TTL
	// fields holds, per local column, the stamp of the change that last
	// set it. A state kept before there were per-column stamps has its
	// record's stamp under anyColumn.
	fields map[string]stamp
}

// olderThan reports whether s is newer than every change applied.
func (st state) olderThan(s stamp) bool {
	return !st.exists || s.version.IsZero() || st.version.IsZero() || s.after(stamp{st.version, st.eventID})
}

// anyColumn stands for every column without a stamp of its own.
const anyColumn = "*"

// fresh returns the columns of fields that s is newer for than the change
// that last set them: a system reporting each changed field on its own,
// in no order, makes a change late for one field and not for another.
func (st state) fresh(fields map[string]any, s stamp) map[string]any {
	out := make(map[string]any, len(fields))
	for c, v := range fields {
		last, ok := st.fields[c]
		if !ok {
			last, ok = st.fields[anyColumn]
		}
		if !ok || s.version.IsZero() || last.version.IsZero() || s.after(last) {
			out[c] = v
		}
	}
	return out
}

// with returns the state after a change stamped s set the columns cols:
// the record's stamp is the newest applied, each column's the one that
// set it last. A delete forgets the columns.
func (st state) with(s stamp, newer bool, cols map[string]any, deleted bool) state {
	next := st
	next.exists = true
	if newer {
		if !s.version.IsZero() {
			next.version = s.version
		}
		next.eventID = s.eventID
	}
	next.fields = map[string]stamp{}
	if !deleted {
		for c, x := range st.fields {
			next.fields[c] = x
		}
		for c := range cols {
			next.fields[c] = s
		}
	}
	return next
}

// stampJSON is how a column's stamp is kept: [version, event id].
type stampJSON [2]string

func encodeFields(fields map[string]stamp) ([]byte, error) {
	out := make(map[string]stampJSON, len(fields))
	for c, s := range fields {
		var v string
		if !s.version.IsZero() {
			v = s.version.UTC().Format(time.RFC3339Nano)
		}
		out[c] = stampJSON{v, s.eventID}
	}
	return json.Marshal(out)
}

func decodeFields(b []byte) (map[string]stamp, error) {
	var in map[string]stampJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, err
	}
	out := make(map[string]stamp, len(in))
	for c, x := range in {
		var s stamp
		if x[0] != "" {
			t, err := time.Parse(time.RFC3339Nano, x[0])
			if err != nil {
				return nil, err
			}
			s.version = t
		}
		s.eventID = x[1]
		out[c] = s
	}
	return out, nil
}

// stamp orders changes: by version, then by event id.
type stamp struct {
	version time.Time
	eventID string
}

func (a stamp) after(b stamp) bool {
	if !a.version.Equal(b.version) {
		return a.version.After(b.version)
	}
	return a.eventID > b.eventID
}

func stampOf(e *cdc.Event) stamp {
	if e == nil {
		return stamp{}
	}
	return stamp{version: e.CommitTime, eventID: e.ID()}
}

// loadState locks and returns the state of key. A tombstone older than ttl
// counts as no state at all.
func (w *Writer) loadState(ctx context.Context, tx pgx.Tx, key string) (state, error) {
	var (
		st      state
		version *time.Time
		deleted bool
		fields  []byte
	)
	err := tx.QueryRow(ctx, `SELECT version, event_id, deleted_at IS NOT NULL, COALESCE(deleted_at > now() - $4::interval, false), fields
		FROM cdcd.apply_state WHERE system = $1 AND table_name = $2 AND key = $3 FOR UPDATE`,
		w.origin, w.cfg.Table, key, ttlInterval(w.cfg.TombstoneTTL)).Scan(&version, &st.eventID, &deleted, &st.tombstoned, &fields)
	if errors.Is(err, pgx.ErrNoRows) {
		return state{}, nil
	}
	if err != nil {
		return state{}, fmt.Errorf("read the applied version: %w", err)
	}
	if deleted && !st.tombstoned {
		return state{}, nil
	}
	st.exists = true
	if version != nil {
		st.version = *version
	}
	if fields == nil {
		st.fields = map[string]stamp{anyColumn: {st.version, st.eventID}}
		return st, nil
	}
	if st.fields, err = decodeFields(fields); err != nil {
		return state{}, fmt.Errorf("decode the applied versions of the columns: %w", err)
	}
	return st, nil
}

// saveState records st as applied to key; deleted marks a tombstone.
func (w *Writer) saveState(ctx context.Context, tx pgx.Tx, key string, st state, deleted bool) error {
	var version *time.Time
	if !st.version.IsZero() {
		version = &st.version
	}
	fields, err := encodeFields(st.fields)
	if err != nil {
		return fmt.Errorf("encode the applied versions of the columns: %w", err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO cdcd.apply_state AS s (system, table_name, key, version, event_id, deleted_at, fields)
		VALUES ($1, $2, $3, $4, $5, CASE WHEN $6::bool THEN now() END, $7::jsonb)
		ON CONFLICT (system, table_name, key) DO UPDATE SET
			version = COALESCE(EXCLUDED.version, s.version),
			event_id = EXCLUDED.event_id,
			deleted_at = EXCLUDED.deleted_at,
			fields = EXCLUDED.fields`,
		w.origin, w.cfg.Table, key, version, st.eventID, deleted, string(fields))
	if err != nil {
		return fmt.Errorf("record the applied version: %w", err)
	}
	return nil
}

// pruneState removes expired tombstones of the writer's table.
func (w *Writer) pruneState(ctx context.Context) error {
	_, err := w.pool.Exec(ctx, `DELETE FROM cdcd.apply_state
		WHERE system = $1 AND table_name = $2 AND deleted_at < now() - $3::interval`,
		w.origin, w.cfg.Table, ttlInterval(w.cfg.TombstoneTTL))
	if err != nil {
		return fmt.Errorf("prune expired tombstones: %w", err)
	}
	return nil
}

func ttlInterval(d time.Duration) string {
	return fmt.Sprintf("%d microseconds", d.Microseconds())
}
