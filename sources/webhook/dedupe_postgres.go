package webhook

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

const createDeliveries = `CREATE SCHEMA IF NOT EXISTS cdcd;
CREATE TABLE IF NOT EXISTS cdcd.webhook_deliveries (
	system      text        NOT NULL,
	delivery_id text        NOT NULL,
	accepted_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (system, delivery_id)
)`

// PostgresDeduper is a Deduper that survives restarts: ids live in
// cdcd.webhook_deliveries, with a MemoryDeduper in front that answers
// recent ids without a round trip. Rows are never deleted here; prune by
// accepted_at.
type PostgresDeduper struct {
	pool  *pgxpool.Pool
	cache *MemoryDeduper
}

// NewPostgresDeduper creates cdcd.webhook_deliveries if it does not exist.
// cache may be nil for a default MemoryDeduper.
func NewPostgresDeduper(ctx context.Context, pool *pgxpool.Pool, cache *MemoryDeduper) (*PostgresDeduper, error) {
	if pool == nil {
		return nil, errors.New("postgres deduper: pool is required")
	}
	if cache == nil {
		cache = NewMemoryDeduper(0, 0)
	}
	if _, err := pool.Exec(ctx, createDeliveries, pgx.QueryExecModeSimpleProtocol); err != nil {
		return nil, fmt.Errorf("create cdcd.webhook_deliveries: %w", err)
	}
	return &PostgresDeduper{pool: pool, cache: cache}, nil
}

// Seen implements Deduper.
func (d *PostgresDeduper) Seen(ctx context.Context, system, id string) (bool, error) {
	if ok, _ := d.cache.Seen(ctx, system, id); ok {
		return true, nil
	}
	var seen bool
	err := d.pool.QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM cdcd.webhook_deliveries WHERE system = $1 AND delivery_id = $2)`,
		system, id).Scan(&seen)
	if err != nil {
		return false, fmt.Errorf("look up delivery in cdcd.webhook_deliveries: %w", err)
	}
	if seen {
		d.cache.Mark(ctx, system, []string{id})
	}
	return seen, nil
}

// Mark implements Deduper with one multi-row insert.
func (d *PostgresDeduper) Mark(ctx context.Context, system string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := d.pool.Exec(ctx,
		`INSERT INTO cdcd.webhook_deliveries (system, delivery_id, accepted_at)
		 SELECT $1, id, now() FROM unnest($2::text[]) AS id
		 ON CONFLICT (system, delivery_id) DO NOTHING`,
		system, ids)
	if err != nil {
		return fmt.Errorf("record deliveries in cdcd.webhook_deliveries: %w", err)
	}
	return d.cache.Mark(ctx, system, ids)
}
