package store

import (
	"context"
	"fmt"

	"github.com/cdcd-dev/cdcd/syncstate"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PendingCreates stores pending creates in cdcd.pending_creates. It
// implements syncstate.PendingCreates.
type PendingCreates struct {
	pool *pgxpool.Pool
}

// PendingCreates returns the store of pending creates.
func (s *Store) PendingCreates() *PendingCreates { return &PendingCreates{pool: s.pool} }

// pendingOf reads which of refs ($1-$4) are pending, by the primary key,
// one ref at a time, as getLinks.
const pendingOf = `
		SELECT p.system, p.object, p.local_table, p.local_key
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS r(system, object, local_table, local_key)
		CROSS JOIN LATERAL (SELECT * FROM cdcd.pending_creates p WHERE p.system = r.system AND p.object = r.object
			AND p.local_table = r.local_table AND p.local_key = r.local_key OFFSET 0) p`

// Pending returns the refs of refs that are pending, in one query.
func (p *PendingCreates) Pending(ctx context.Context, refs []syncstate.LinkRef) (map[syncstate.LinkRef]bool, error) {
	out := map[syncstate.LinkRef]bool{}
	if len(refs) == 0 {
		return out, nil
	}
	sys, obj, tbl, key := refColumns(refs)
	rows, _ := p.pool.Query(ctx, pendingOf, sys, obj, tbl, key)
	var r syncstate.LinkRef
	if _, err := pgx.ForEachRow(rows, []any{&r.System, &r.Object, &r.Table, &r.Key}, func() error {
		out[r] = true
		return nil
	}); err != nil {
		return nil, fmt.Errorf("get pending creates: %w", err)
	}
	return out, nil
}

// Begin records refs as pending; a ref pending already keeps its time.
func (p *PendingCreates) Begin(ctx context.Context, refs []syncstate.LinkRef) error {
	if len(refs) == 0 {
		return nil
	}
	sys, obj, tbl, key := refColumns(refs)
	if _, err := p.pool.Exec(ctx, `
		INSERT INTO cdcd.pending_creates (system, object, local_table, local_key)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
		ON CONFLICT DO NOTHING`, sys, obj, tbl, key); err != nil {
		return fmt.Errorf("begin %d pending creates: %w", len(refs), err)
	}
	return nil
}

// Settle forgets refs.
func (p *PendingCreates) Settle(ctx context.Context, refs []syncstate.LinkRef) error {
	if len(refs) == 0 {
		return nil
	}
	sys, obj, tbl, key := refColumns(refs)
	if _, err := on(ctx, p.pool).Exec(ctx, `
		DELETE FROM cdcd.pending_creates p
		USING unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS r(system, object, local_table, local_key)
		WHERE (p.system, p.object, p.local_table, p.local_key) = (r.system, r.object, r.local_table, r.local_key)`,
		sys, obj, tbl, key); err != nil {
		return fmt.Errorf("settle %d pending creates: %w", len(refs), err)
	}
	return nil
}

func refColumns(refs []syncstate.LinkRef) (sys, obj, tbl, key []string) {
	sys, obj, tbl, key = make([]string, len(refs)), make([]string, len(refs)), make([]string, len(refs)), make([]string, len(refs))
	for i, r := range refs {
		sys[i], obj[i], tbl[i], key[i] = r.System, r.Object, r.Table, r.Key
	}
	return sys, obj, tbl, key
}
