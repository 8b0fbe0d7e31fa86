// Package postgres applies the changes of a remote system to a local table.
//
// Every Write is one transaction tagged with the system as its origin, so
// the capture reader stamps the resulting events with Origin = the system
// and the router never sends them back there. The tag is the replication
// origin "cdcd:<system>" when the role may use replication origins, and
// otherwise a transactional logical message with prefix cdc.OriginMessage
// emitted as the transaction's first statement.
//
// A change older than the one last applied to its record is skipped, and
// so is an update of a record deleted less than tombstone_ttl ago (see
// package applystate).
package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/sinks/postgres/applystate"
	"github.com/cdcd-dev/cdcd/sinks/postgres/target"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// maxBatch is the most records one Write applies in its transaction.
const maxBatch = 1000

// Writer applies records to one table. It implements syncapi.Writer and
// syncapi.Batcher; Close releases its connections.
type Writer struct {
	cfg    Config
	in     Inbound
	origin string // the system the records come from
	pool   *pgxpool.Pool
	state  applystate.Records
	links  links
	log    zerolog.Logger

	mu        sync.Mutex
	ready     bool
	useOrigin bool // replication origin, else a logical message
	table     *target.Table
	pruned    time.Time

	// session holds, between Writes, the connection on which the
	// replication origin's session is set up (nil until one is): a Write
	// that takes it saves setting the session up and resetting it. Its
	// capacity is one; a Write that finds it empty (another Write has the
	// connection) tags its transaction with a message.
	session chan *heldConn
}

// heldConn is a connection kept out of the pool with the origin's
// session set up on it.
type heldConn struct {
	conn *pgxpool.Conn
	used time.Time // when a Write last used it
}

var (
	_ syncapi.Writer      = (*Writer)(nil)
	_ syncapi.Batcher     = (*Writer)(nil)
	_ syncapi.EveryChange = (*Writer)(nil)
)

// New validates cfg and returns a writer for the system name (the origin
// unless cfg.Origin is set). It does not connect.
func New(name string, cfg *Config, in Inbound, env config.Env) (*Writer, error) {
	if in.Fetcher != nil && in.Mapper == nil {
		return nil, fmt.Errorf("postgres writer: a Fetcher needs a Mapper")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres writer: url is not a valid connection string")
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("postgres writer: %w", err)
	}
	origin := cfg.Origin
	if origin == "" {
		origin = name
	}
	session := make(chan *heldConn, 1)
	session <- nil
	return &Writer{
		session: session,
		cfg:     *cfg,
		in:      in,
		origin:  origin,
		pool:    pool,
		state:   applystate.Records{System: origin, Table: cfg.Table, TTL: cfg.TombstoneTTL},
		links:   links{system: origin, table: cfg.Table, pool: pool},
		log:     env.Log.With().Str("component", "postgres_writer").Str("table", cfg.Table).Logger(),
	}, nil
}

// MaxBatch is the most records one Write takes.
func (w *Writer) MaxBatch() int { return maxBatch }

// EveryChange tells the pipeline never to coalesce: each change is checked
// on its own for staleness and echoes, so a user's change is never folded
// into an echo that follows it and dropped with it.
func (w *Writer) EveryChange() bool { return true }

// Close frees the replication origin's session and closes the connection
// pool. It waits for a Write in flight to end.
func (w *Writer) Close(ctx context.Context) error {
	if held := <-w.session; held != nil {
		w.endSession(ctx, held.conn)
	}
	w.session <- nil
	w.pool.Close()
	return nil
}

// UsesReplicationOrigin reports whether writes are tagged with a
// replication origin (true) or a logical message (false). It is valid
// after the first successful Write.
func (w *Writer) UsesReplicationOrigin() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.useOrigin
}

// setup checks the state table and picks the tagging mode, once.
func (w *Writer) setup(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ready {
		return nil
	}
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		return classify("connect to the local database", err)
	}
	defer conn.Release()
	if err := applystate.Require(ctx, conn); err != nil {
		return classify("prepare the state table", err)
	}
	table, err := target.Open(ctx, conn.Conn(), w.cfg.Table)
	if err != nil {
		return classify("prepare "+w.cfg.Table, err)
	}
	useOrigin, err := probeOrigin(ctx, conn.Conn(), cdc.OriginName(w.origin))
	if err != nil {
		return classify("set up the replication origin", err)
	}
	w.table, w.useOrigin, w.ready = table, useOrigin, true
	mode := "logical_message"
	if useOrigin {
		mode = "replication_origin"
	}
	w.log.Info().Str("origin", w.origin).Str("mode", mode).Msg("origin tagging ready")
	return nil
}

// probeOrigin creates the replication origin if missing and reports
// whether this role may use it; a missing privilege is no error.
func probeOrigin(ctx context.Context, conn *pgx.Conn, name string) (bool, error) {
	_, err := conn.Exec(ctx, "SELECT pg_replication_origin_create($1) WHERE pg_replication_origin_oid($1) IS NULL", name)
	if hasCode(err, codeInsufficientPrivilege) {
		return false, nil
	}
	if err != nil && !hasCode(err, "23505") { // created concurrently
		return false, err
	}
	_, err = conn.Exec(ctx, "SELECT pg_replication_origin_session_setup($1)", name)
	switch {
	case hasCode(err, codeInsufficientPrivilege):
		return false, nil
	case hasCode(err, codeObjectInUse): // another session holds it: the privilege is there
		return true, nil
	case err != nil:
		return false, err
	}
	if _, err := conn.Exec(ctx, "SELECT pg_replication_origin_session_reset()"); err != nil {
		conn.Close(ctx)
		return false, err
	}
	return true, nil
}

// Write applies the records in one transaction tagged with the origin and
// returns one Result per record. A skipped record (stale, or an update of
// a tombstoned record) has a nil Err; its Result.Version is the version
// already applied, which is newer. A record the table refuses (a
// constraint violation, bad data, an unknown column) gets a permanent
// Err, and one the server refuses otherwise for its sake (a trigger's
// exception) or that could not be read back from the system a transient
// Err; the others still apply. The server's trouble (a deadlock, a
// serialization failure, a lock or statement timeout, a lost connection,
// a shutdown: see transient) fails the whole call, marked cdc.Transient,
// and nothing is applied; so does any other failure of the connection or
// the transaction, unmarked. The records end as they would in a Write
// each, in order: the records after one that conflicts are applied in a
// transaction after that conflict's resolution (see writeTx), and a
// failure then leaves applied what was committed before it, which a
// retry finds applied or held.
func (w *Writer) Write(ctx context.Context, records []syncapi.Record) ([]syncapi.Result, error) {
	res, err := w.writeBatch(ctx, records)
	if err != nil && !cdc.IsPermanent(err) && transient(err) {
		err = cdc.Transient(err)
	}
	return res, err
}

// writeBatch is Write, its errors not yet marked transient.
func (w *Writer) writeBatch(ctx context.Context, records []syncapi.Record) ([]syncapi.Result, error) {
	start := time.Now()
	if err := w.setup(ctx); err != nil {
		return nil, err
	}
	if len(records) == 0 {
		return nil, nil
	}
	results := make([]syncapi.Result, len(records))
	var counts [outcomes]int
	records, done, held, err := w.refetch(ctx, records, results, &counts)
	if err != nil {
		return nil, err
	}
	w.prune(ctx)
	txs, session := 0, false
	for more := true; more; txs++ {
		if more, session, err = w.writeTx(ctx, records, done, held, results, &counts); err != nil {
			return nil, err
		}
	}
	w.log.Debug().Int("applied", counts[applied]).Int("skipped_stale", counts[skippedStale]).
		Int("skipped_tombstoned", counts[skippedTombstoned]).Int("skipped_echo", counts[skippedEcho]).
		Int("skipped_gone", counts[skippedGone]).Int("held", counts[heldConflict]).Int("conflicts", counts[conflicted]).
		Int("failed", counts[failed]).
		Int("transactions", txs).Bool("replication_origin", session).Dur("took", time.Since(start)).Msg("batch applied")
	return results, nil
}

// writeTx applies the records not done in one transaction tagged with
// the origin, then resolves the conflicts found (resolveConflicts). It
// stops after the first record (or run) that conflicts and reports more:
// the records after it are applied in a transaction after the
// resolution, as in a Write after it (see applyAll). A Write without
// conflicts is one transaction. session says the transaction was tagged
// with the replication origin's session.
func (w *Writer) writeTx(ctx context.Context, records []syncapi.Record, done []bool, held []cdc.Row, results []syncapi.Result, counts *[outcomes]int) (more, session bool, err error) {
	conn, session, err := w.acquire(ctx)
	if err != nil {
		return false, false, err
	}
	committed := false
	defer func() { w.release(ctx, conn, session, committed) }()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return false, session, classify("begin", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if !session {
		if _, err := tx.Exec(ctx, "SELECT pg_logical_emit_message(true, $1, $2)", cdc.OriginMessage, w.origin); err != nil {
			return false, session, classify("tag the transaction with its origin", err)
		}
	}
	left, more, err := w.applyAll(ctx, tx, records, done, held, results, counts)
	if err != nil {
		return false, session, err
	}
	var (
		conflicting []*syncapi.Record
		theirs      []*syncapi.Result
		theirsHeld  []cdc.Row
	)
	for _, i := range left {
		conflicting, theirs, theirsHeld = append(conflicting, &records[i]), append(theirs, &results[i]), append(theirsHeld, held[i])
	}
	if err := tx.Commit(ctx); err != nil {
		return false, session, classify("commit", err)
	}
	committed = true
	if len(conflicting) > 0 {
		if err := w.resolveConflicts(ctx, conflicting, theirs, theirsHeld); err != nil {
			return false, session, err
		}
	}
	return more, session, nil
}

// idleCheck is how long the held connection may idle before a Write
// checks it is alive, as the pool does for its idle connections.
const idleCheck = time.Second

// acquire returns the connection for a Write's transaction, and whether
// the replication origin's session is set up on it. In that mode a Write
// takes the held connection, or sets the session up on a new one; it
// reports false when the transaction must be tagged with a message
// instead: another Write has the connection, or another session holds the
// origin (Postgres allows one session per origin).
func (w *Writer) acquire(ctx context.Context) (*pgxpool.Conn, bool, error) {
	if w.UsesReplicationOrigin() {
		select {
		case held := <-w.session:
			return w.withSession(ctx, held)
		default:
		}
	}
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		return nil, false, classify("connect to the local database", err)
	}
	return conn, false, nil
}

// withSession returns held's connection when it is alive, else a new one
// with the session set up. It puts nil back in w.session when it returns
// no connection with the session, so the next Write tries again.
func (w *Writer) withSession(ctx context.Context, held *heldConn) (*pgxpool.Conn, bool, error) {
	if held != nil {
		if time.Since(held.used) < idleCheck || held.conn.Ping(ctx) == nil {
			return held.conn, true, nil
		}
		held.conn.Conn().Close(context.WithoutCancel(ctx)) // the pool drops it; the server frees the origin
		held.conn.Release()
	}
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		w.session <- nil
		return nil, false, classify("connect to the local database", err)
	}
	_, err = conn.Exec(ctx, "SELECT pg_replication_origin_session_setup($1)", cdc.OriginName(w.origin))
	switch {
	case err == nil:
		return conn, true, nil
	case hasCode(err, codeObjectInUse):
		w.session <- nil
		return conn, false, nil
	}
	conn.Release()
	w.session <- nil
	return nil, false, classify("set up the replication origin session", err)
}

// release ends a Write's use of conn. A connection with the origin's
// session is kept for the next Write once its transaction committed;
// after a failure the session is reset and the connection goes back to
// the pool.
func (w *Writer) release(ctx context.Context, conn *pgxpool.Conn, session, committed bool) {
	if !session {
		conn.Release()
		return
	}
	if committed && !conn.Conn().IsClosed() {
		w.session <- &heldConn{conn: conn, used: time.Now()}
		return
	}
	w.endSession(ctx, conn)
	w.session <- nil
}

// endSession resets the origin's session on conn and releases it.
func (w *Writer) endSession(ctx context.Context, conn *pgxpool.Conn) {
	cleanup := context.WithoutCancel(ctx)
	if _, err := conn.Exec(cleanup, "SELECT pg_replication_origin_session_reset()"); err != nil {
		conn.Conn().Close(cleanup) // the pool drops it; the server frees the origin
	}
	conn.Release()
}

// prune drops expired tombstones at most every config.PruneEvery of the
// TTL.
func (w *Writer) prune(ctx context.Context) {
	every := config.PruneEvery(w.cfg.TombstoneTTL)
	w.mu.Lock()
	due := time.Since(w.pruned) >= every
	if due {
		w.pruned = time.Now()
	}
	w.mu.Unlock()
	if !due {
		return
	}
	n, err := w.state.Prune(ctx, w.pool)
	if err != nil {
		w.log.Warn().Err(err).Int64("deleted", n).Msg("tombstones not pruned")
	} else if n > 0 {
		w.log.Debug().Int64("deleted", n).Msg("expired tombstones pruned")
	}
}
