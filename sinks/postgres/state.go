package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc"
)

// stateTable keeps, per (system, table, record key), the version of the
// change last applied and, after a delete, when it happened: the tombstone
// that stops a late update from resurrecting the record. It is written in
// the transaction that applies the change.
const stateTable = "cdcd.apply_state"

const stateDDL = `CREATE TABLE IF NOT EXISTS cdcd.apply_state (
	system     text NOT NULL,
	table_name text NOT NULL,
	key        text NOT NULL,
	version    timestamptz,
	event_id   text NOT NULL DEFAULT '',
	deleted_at timestamptz,
	PRIMARY KEY (system, table_name, key)
)`

// ensureState creates the cdcd schema and the state table unless they
// exist; checking first lets a role without CREATE use tables an
// administrator made.
func ensureState(ctx context.Context, conn *pgx.Conn) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", stateTable).Scan(&exists); err != nil {
		return fmt.Errorf("look up %s: %w", stateTable, err)
	}
	if exists {
		return nil
	}
	var schema bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'cdcd')").Scan(&schema); err != nil {
		return fmt.Errorf("look up schema cdcd: %w", err)
	}
	if !schema {
		if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS cdcd"); err != nil {
			return fmt.Errorf("create schema cdcd (or create it as an administrator and grant USAGE, CREATE): %w", err)
		}
	}
	if _, err := conn.Exec(ctx, stateDDL); err != nil {
		return fmt.Errorf("create %s (or create it as an administrator and grant SELECT, INSERT, UPDATE, DELETE): %w", stateTable, err)
	}
	return nil
}

// state is what was last applied to one record.
type state struct {
	exists     bool
	version    time.Time // zero when unknown
	eventID    string
	tombstoned bool // deleted within the tombstone TTL
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
	)
	err := tx.QueryRow(ctx, `SELECT version, event_id, deleted_at IS NOT NULL, COALESCE(deleted_at > now() - $4::interval, false)
		FROM cdcd.apply_state WHERE system = $1 AND table_name = $2 AND key = $3 FOR UPDATE`,
		w.origin, w.cfg.Table, key, ttlInterval(w.cfg.TombstoneTTL)).Scan(&version, &st.eventID, &deleted, &st.tombstoned)
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
	return st, nil
}

// saveState records s as applied to key; deleted marks a tombstone.
func (w *Writer) saveState(ctx context.Context, tx pgx.Tx, key string, s stamp, deleted bool) error {
	var version *time.Time
	if !s.version.IsZero() {
		version = &s.version
	}
	_, err := tx.Exec(ctx, `INSERT INTO cdcd.apply_state AS s (system, table_name, key, version, event_id, deleted_at)
		VALUES ($1, $2, $3, $4, $5, CASE WHEN $6::bool THEN now() END)
		ON CONFLICT (system, table_name, key) DO UPDATE SET
			version = COALESCE(EXCLUDED.version, s.version),
			event_id = EXCLUDED.event_id,
			deleted_at = EXCLUDED.deleted_at`,
		w.origin, w.cfg.Table, key, version, s.eventID, deleted)
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
