package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncstate"
	"github.com/jackc/pgx/v5"
)

// LinkBack returns links that, after storing each link, also write its
// external id into column of the local record (a pipeline's link.column).
// The update runs in a transaction tagged with the link's system as origin,
// so it reaches every other pipeline of the table but is never synced back
// to that system. Only rows whose column differs are updated, so storing
// the same link again writes nothing to the WAL.
func (s *Store) LinkBack(inner syncstate.Links, column string) syncstate.Links {
	return &linkBack{Links: inner, pool: s, column: column}
}

type linkBack struct {
	syncstate.Links
	pool   *Store
	column string
}

func (l *linkBack) Put(ctx context.Context, links []syncstate.Link) error {
	if err := l.Links.Put(ctx, links); err != nil {
		return err
	}
	bySystem := map[string][]syncstate.Link{}
	for _, k := range links {
		if k.ExternalID != "" && k.Base != nil { // Base nil: the remote record was deleted
			bySystem[k.System] = append(bySystem[k.System], k)
		}
	}
	// Within a transaction of InTx the ids are written in it (a savepoint):
	// they are committed with their links or not at all, and no second
	// connection is taken while the first is held (settling groups holding
	// every connection of the pool would wait for each other forever). A
	// transaction has one origin, so links of several systems each go in
	// their own.
	outer, inTx := on(ctx, l.pool.pool).(pgx.Tx)
	for system, ks := range bySystem {
		begin := l.pool.pool.Begin
		if inTx && len(bySystem) == 1 {
			begin = outer.Begin
		}
		if err := l.write(ctx, begin, system, ks); err != nil {
			return err
		}
	}
	return nil
}

func (l *linkBack) write(ctx context.Context, begin func(context.Context) (pgx.Tx, error), system string, links []syncstate.Link) error {
	tx, err := begin(ctx)
	if err != nil {
		return fmt.Errorf("write back external ids: %w", err)
	}
	defer tx.Rollback(ctx)
	col := pgx.Identifier{l.column}.Sanitize()
	tagged := false
	for _, k := range links {
		table, where, args, err := target(k)
		if err != nil {
			return err
		}
		// Simple protocol: key values go as literals, which Postgres
		// coerces to whatever type the key columns have.
		args = append([]any{pgx.QueryExecModeSimpleProtocol}, args...)
		cond := where + " AND " + col + " IS DISTINCT FROM $1"
		// Tag the transaction only once a row needs the id, so that storing
		// known links writes nothing to the WAL.
		var stale bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+table+" WHERE "+cond+")", args...).Scan(&stale); err != nil {
			return fmt.Errorf("write back the %s id into %s.%s: %w", system, k.Table, l.column, err)
		}
		if !stale {
			continue
		}
		if !tagged {
			if _, err := tx.Exec(ctx, "SELECT pg_logical_emit_message(true, $1, $2)", cdc.OriginMessage, system); err != nil {
				return fmt.Errorf("write back external ids: tag the transaction with origin %q: %w", system, err)
			}
			tagged = true
		}
		if _, err := tx.Exec(ctx, "UPDATE "+table+" SET "+col+" = $1 WHERE "+cond, args...); err != nil {
			return fmt.Errorf("write back the %s id into %s.%s: %w", system, k.Table, l.column, err)
		}
	}
	if !tagged {
		return nil
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("write back external ids: %w", err)
	}
	return nil
}

// target returns the link's quoted table, a condition selecting its record
// by key, and the arguments: $1 is the external id, the key values follow.
func target(k syncstate.Link) (table, where string, args []any, err error) {
	schema, name, ok := strings.Cut(k.Table, ".")
	if !ok {
		return "", "", nil, fmt.Errorf("write back: table %q is not schema.table", k.Table)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(k.Key)))
	dec.UseNumber()
	var key map[string]any
	if err := dec.Decode(&key); err != nil || len(key) == 0 {
		return "", "", nil, fmt.Errorf("write back: record key of %s is not a JSON object", k.Table)
	}
	cols := make([]string, 0, len(key))
	for c := range key {
		cols = append(cols, c)
	}
	sort.Strings(cols)
	args = []any{k.ExternalID}
	conds := make([]string, 0, len(cols))
	for _, c := range cols {
		args = append(args, fmt.Sprint(key[c]))
		conds = append(conds, fmt.Sprintf("%s = $%d", pgx.Identifier{c}.Sanitize(), len(args)))
	}
	return pgx.Identifier{schema, name}.Sanitize(), strings.Join(conds, " AND "), args, nil
}
