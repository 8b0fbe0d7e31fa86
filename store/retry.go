package store

import (
	"context"
	"errors"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// txAttempts bounds how often inTx runs a transaction Postgres rolled back.
const txAttempts = 5

// inTx runs fn in a transaction and commits it. When Postgres rolls it
// back for a serialization failure (40001) or a deadlock (40P01), nothing
// of it happened, and it is run again, up to txAttempts times in all,
// after a short random pause.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	pause := cdc.Backoff{Min: 20 * time.Millisecond, Max: time.Second}
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, s.pool, fn)
		if err == nil || !rolledBack(err) || attempt == txAttempts {
			return err
		}
		s.log.Debug().Err(err).Int("attempt", attempt).Msg("transaction rolled back by the server; running it again")
		if !cdc.Sleep(ctx, pause.Next()) {
			return err
		}
	}
}

// rolledBack reports whether err is a serialization failure or a deadlock.
func rolledBack(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}
