package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"

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
	if err := CreateDeliveries(ctx, pool); err != nil {
		return nil, err
	}
	return &PostgresDeduper{pool: pool, cache: cache}, nil
}

// CreateDeliveries creates cdcd.webhook_deliveries, the accepted delivery
// ids, if it does not exist.
func CreateDeliveries(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, createDeliveries, pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("create cdcd.webhook_deliveries: %w", err)
	}
	return nil
}

// PruneDeliveries forgets delivery ids accepted more than olderThan ago,
// in bounded chunks, and returns how many it deleted. Vendors stop
// retrying within days (HubSpot after 24 hours), so a week is safe.
func PruneDeliveries(ctx context.Context, pool *pgxpool.Pool, olderThan time.Duration) (int64, error) {
	cutoff := time.Now().Add(-olderThan)
	var total int64
	for {
		tag, err := pool.Exec(ctx, `
			DELETE FROM cdcd.webhook_deliveries WHERE (system, delivery_id) IN (
				SELECT system, delivery_id FROM cdcd.webhook_deliveries WHERE accepted_at < $1 LIMIT 5000)`, cutoff)
		if err != nil {
			return total, fmt.Errorf("prune cdcd.webhook_deliveries: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < 5000 || ctx.Err() != nil {
			return total, ctx.Err()
		}
	}
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
