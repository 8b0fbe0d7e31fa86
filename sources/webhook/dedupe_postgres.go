package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresDeduper is a Deduper that survives restarts: ids live in
// cdcd.webhook_deliveries (made by store's migrations), with a
// MemoryDeduper in front that answers recent ids without a round trip.
// Ids are kept per deployment (a postgres.slot): another deployment on the
// database has ids of its own, and never makes this one drop a delivery.
// Rows are never deleted here; prune by accepted_at.
type PostgresDeduper struct {
	pool       *pgxpool.Pool
	deployment string
	cache      *MemoryDeduper
}

// NewPostgresDeduper returns the deduper of deployment. cache may be nil
// for a default MemoryDeduper.
func NewPostgresDeduper(pool *pgxpool.Pool, deployment string, cache *MemoryDeduper) (*PostgresDeduper, error) {
	if pool == nil || deployment == "" {
		return nil, errors.New("postgres deduper: pool and deployment are required")
	}
	if cache == nil {
		cache = NewMemoryDeduper(0, 0)
	}
	return &PostgresDeduper{pool: pool, deployment: deployment, cache: cache}, nil
}

// AdoptDeliveries gives deployment the delivery ids of systems that were
// accepted before ids were kept per deployment.
func AdoptDeliveries(ctx context.Context, q Execer, deployment string, systems []string) error {
	_, err := q.Exec(ctx, `UPDATE cdcd.webhook_deliveries SET deployment = $1 WHERE deployment = '' AND system = ANY($2)
		AND NOT EXISTS (SELECT 1 FROM cdcd.webhook_deliveries d
			WHERE d.deployment = $1 AND d.system = webhook_deliveries.system AND d.delivery_id = webhook_deliveries.delivery_id)`,
		deployment, systems)
	if err != nil {
		return fmt.Errorf("adopt the delivery ids of %v in cdcd.webhook_deliveries: %w", systems, err)
	}
	return nil
}

// Execer runs a statement: a *pgxpool.Pool, a *pgx.Conn or a pgx.Tx.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// PruneDeliveries forgets the delivery ids of deployment accepted more
// than olderThan ago, in bounded chunks, and returns how many it deleted.
// Vendors stop retrying within days (HubSpot after 24 hours), so a week is
// safe.
func PruneDeliveries(ctx context.Context, pool *pgxpool.Pool, deployment string, olderThan time.Duration) (int64, error) {
	cutoff := time.Now().Add(-olderThan)
	var total int64
	for {
		tag, err := pool.Exec(ctx, `
			DELETE FROM cdcd.webhook_deliveries WHERE deployment = $1 AND (system, delivery_id) IN (
				SELECT system, delivery_id FROM cdcd.webhook_deliveries WHERE deployment = $1 AND accepted_at < $2 LIMIT 5000)`,
			deployment, cutoff)
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
		`SELECT EXISTS (SELECT 1 FROM cdcd.webhook_deliveries WHERE deployment = $1 AND system = $2 AND delivery_id = $3)`,
		d.deployment, system, id).Scan(&seen)
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
		`INSERT INTO cdcd.webhook_deliveries (deployment, system, delivery_id, accepted_at)
		 SELECT $1, $2, id, now() FROM unnest($3::text[]) AS id
		 ON CONFLICT (deployment, system, delivery_id) DO NOTHING`,
		d.deployment, system, ids)
	if err != nil {
		return fmt.Errorf("record deliveries in cdcd.webhook_deliveries: %w", err)
	}
	return d.cache.Mark(ctx, system, ids)
}
