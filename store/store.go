package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/cdcd-dev/cdcd/syncstate"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
)

// ErrNotFound reports a dead letter id that does not exist.
var ErrNotFound = errors.New("not found")

// Store is cdcd's state in Postgres. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	log  zerolog.Logger
}

var (
	_ syncstate.Links       = (*Links)(nil)
	_ syncstate.DeadLetters = (*DeadLetters)(nil)
	_ syncstate.Audit       = (*Audit)(nil)
)

// Open connects to the database at url, creates schema cdcd if it is
// missing and applies every pending migration. Several processes may Open
// the same database at once: migrations run one process at a time.
func Open(ctx context.Context, url string, log zerolog.Logger) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse postgres url: %w", err)
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "cdcd"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	s := &Store{pool: pool, log: log.With().Str("component", "store").Logger()}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close waits for queries in flight and closes every connection.
func (s *Store) Close() { s.pool.Close() }

// Links returns the link store.
func (s *Store) Links() *Links { return &Links{pool: s.pool} }

// DeadLetters returns the dead-letter store used by pipelines.
func (s *Store) DeadLetters() *DeadLetters { return &DeadLetters{pool: s.pool} }

// Audit returns the audit trail writer.
func (s *Store) Audit() *Audit { return &Audit{pool: s.pool} }

// Pool is the connection pool, for packages that keep their own tables in
// schema cdcd (jobs).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }
