package store

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// querier runs a store's statements: its pool, or the transaction InTx
// opened on that pool.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error)
}

type txKey struct{}

// openTx is a transaction InTx opened, with the pool it belongs to.
type openTx struct {
	pool *pgxpool.Pool
	tx   pgx.Tx
}

// on is where a statement of a store on pool runs: in the transaction of
// ctx when InTx opened one on the same pool, else on the pool.
func on(ctx context.Context, pool *pgxpool.Pool) querier {
	if t, ok := ctx.Value(txKey{}).(*openTx); ok && t.pool == pool {
		return t.tx
	}
	return pool
}

// InTx runs fn in one transaction: what the store's links, recent writes,
// audit, dead letters and pending creates write with the ctx fn is given
// is committed once fn returns nil, or not at all (fn's error is
// returned). fn must not use that ctx from more than one goroutine at a
// time. Within a transaction of ctx already, fn runs in it.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if t, ok := ctx.Value(txKey{}).(*openTx); ok && t != nil && t.pool == s.pool {
		return fn(ctx)
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return fn(context.WithValue(ctx, txKey{}, &openTx{pool: s.pool, tx: tx}))
	})
}
