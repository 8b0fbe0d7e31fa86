package pgwal

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/cdcd-dev/cdcd/cdc"
)

// session runs one replication connection from connect to error or stop.
func (r *Reader) session(parent context.Context) error {
	ctx, abort := context.WithCancelCause(parent)
	defer abort(nil)
	r.abort.Store(&abort)
	defer r.abort.Store(nil)
	err := r.replicate(ctx)
	if cause := context.Cause(ctx); parent.Err() == nil && errors.Is(cause, errGoingAway) {
		return cause
	}
	return err
}

// replicate streams on one replication connection.
func (r *Reader) replicate(ctx context.Context) error {
	conn, err := connect(ctx, r.cfg.URL, true)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	start, err := r.prepare(ctx, conn)
	if err != nil {
		return err
	}
	names := make([]string, len(r.publications))
	for i, p := range r.publications {
		names[i] = quoteIdent(p)
	}
	err = pglogrepl.StartReplication(ctx, conn, quoteIdent(r.cfg.Slot), pglogrepl.LSN(start), pglogrepl.StartReplicationOptions{
		Mode:       pglogrepl.LogicalReplication,
		PluginArgs: []string{"proto_version '1'", "publication_names " + quoteLiteral(strings.Join(names, ",")), "messages 'true'"},
	})
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return classify(err, r.cfg.Slot)
		}
		return fmt.Errorf("start replication: %w", err)
	}
	r.decoder.Reset()
	s := &stream{
		r:       r,
		conn:    conn,
		tracker: cdc.NewTracker(start),
		sent:    start,
	}
	r.streaming.Store(true)
	r.log.Info().Stringer("start_lsn", start).Msg("replication started")
	return s.run(ctx)
}

// prepare checks the server, ensures publication and slot, and returns
// where to start.
func (r *Reader) prepare(ctx context.Context, conn *pgconn.PgConn) (cdc.LSN, error) {
	if err := checkServer(ctx, conn); err != nil {
		return 0, err
	}
	sys, err := pglogrepl.IdentifySystem(ctx, conn)
	if err != nil {
		return 0, fmt.Errorf("identify system: %w", err)
	}
	r.log.Debug().Str("system_id", sys.SystemID).Int32("timeline", sys.Timeline).Stringer("wal_end", sys.XLogPos).Msg("connected")
	if err := checkTables(ctx, conn, r.cfg.Tables); err != nil {
		return 0, err
	}
	if r.publications, err = r.ensurePublications(ctx, conn); err != nil {
		return 0, err
	}
	if r.pk, err = primaryKeys(ctx, conn); err != nil {
		return 0, err
	}
	slot, err := readSlot(ctx, conn, r.cfg.Slot, sys.DBName)
	if err != nil {
		return 0, err
	}
	var start cdc.LSN
	switch {
	case slot == nil:
		if start, err = createSlot(ctx, conn, r.cfg.Slot); err != nil {
			return 0, classify(err, r.cfg.Slot)
		}
		r.log.Info().Stringer("consistent_point", start).Msg("replication slot created")
	case slot.active:
		return 0, fmt.Errorf("%w (pid %s)", errSlotBusy, slot.activePID)
	default:
		start = slot.confirmed
	}
	// The server may not have persisted our last confirmation; starting
	// at it skips what this process already had acknowledged.
	return max(start, r.Confirmed()), nil
}

// ensurePublications refuses tables without a replica identity, unless
// their pipelines take inserts only, and then creates or checks the
// publications: cfg.Publication for every other table, and
// cfg.Publication + "_inserts", publishing inserts only, for those. It
// returns the names to stream from.
func (r *Reader) ensurePublications(ctx context.Context, conn *pgconn.PgConn) ([]string, error) {
	inserts, err := insertsOnly(ctx, conn, r.cfg.Tables, r.cfg.InsertsOnly)
	if err != nil {
		return nil, err
	}
	pubs := []publication{{name: r.cfg.Publication, lists: "postgres.tables lists"}}
	if len(inserts) > 0 {
		pubs[0].tables = slices.DeleteFunc(slices.Clone(r.cfg.Tables), func(t Table) bool { return slices.Contains(inserts, t) })
		pubs[0].lists = "postgres.tables lists, apart from the tables published for inserts only,"
		if len(pubs[0].tables) == 0 {
			pubs = nil
		}
		pubs = append(pubs, publication{name: r.cfg.Publication + insertsSuffix, tables: inserts, inserts: true,
			lists: "the tables to publish for inserts only (no replica identity, pipelines taking only inserts) are"})
	} else {
		pubs[0].tables = r.cfg.Tables
	}
	var names []string
	for _, p := range pubs {
		if len(p.name) > maxIdentifier {
			return nil, permanent(fmt.Errorf("publication name %q is longer than %d bytes: shorten postgres.publication", p.name, maxIdentifier))
		}
		created, err := ensurePublication(ctx, conn, p)
		if err != nil {
			return nil, err
		}
		if created {
			r.log.Info().Str("publication", p.name).Int("tables", len(p.tables)).Bool("inserts_only", p.inserts).Msg("publication created")
		}
		names = append(names, p.name)
	}
	return names, nil
}

// insertsSuffix names the publication of tables published for inserts
// only, after postgres.publication.
const insertsSuffix = "_inserts"

// maxIdentifier is the longest name Postgres keeps whole.
const maxIdentifier = 63

// classify turns server errors into actionable ones.
func classify(err error, slot string) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	switch pgErr.Code {
	case "55006":
		return fmt.Errorf("%w: %s", errSlotBusy, pgErr.Message)
	case "55000":
		if pgErr.Detail != "" {
			return permanent(fmt.Errorf("replication slot %q cannot be read: %s (%s); drop it, let cdcd recreate it, and backfill", slot, pgErr.Message, pgErr.Detail))
		}
		return permanent(fmt.Errorf("%s; set wal_level=logical in postgresql.conf and restart Postgres", pgErr.Message))
	case "42501":
		return permanent(fmt.Errorf("%s: grant the role REPLICATION (ALTER ROLE ... REPLICATION)", pgErr.Message))
	}
	return err
}

// stream is one session's receive loop. A single goroutine owns the
// connection: receiving, decoding, publishing and status updates.
type stream struct {
	r       *Reader
	conn    *pgconn.PgConn
	tracker *cdc.Tracker

	batch      []cdc.Event
	batchSince time.Time
	emitted    int      // events of batch that a watermark added (a chunk's rows)
	txn        *cdc.Txn // open transaction, nil between transactions
	lastSealed cdc.LSN  // end of the newest transaction handed to the bus
	sent       cdc.LSN  // last position reported to the server
	nextStatus time.Time
	deadline   time.Time // the read deadline last set on the connection
	pings      pings     // keepalives that asked for a reply
}

func (s *stream) run(ctx context.Context) error {
	cfg := &s.r.cfg
	netConn := s.conn.Conn()
	stop := context.AfterFunc(ctx, func() { _ = netConn.SetReadDeadline(time.Now()) })
	defer stop()
	s.nextStatus = time.Now().Add(cfg.StatusInterval)
	for {
		if ctx.Err() != nil {
			if cause := context.Cause(ctx); errors.Is(cause, errGoingAway) {
				return cause // no drain: the walsender would wait for it
			}
			return s.drain(ctx)
		}
		select {
		case <-s.tracker.Failed():
			return fmt.Errorf("bus did not acknowledge an event: %w", s.tracker.Err())
		default:
		}
		deadline := s.nextStatus
		if flushAt := s.batchSince.Add(cfg.Linger); len(s.batch) > 0 && flushAt.Before(deadline) {
			deadline = flushAt
		}
		if !deadline.Equal(s.deadline) {
			_ = netConn.SetReadDeadline(deadline)
			s.deadline = deadline
		}
		msg, err := s.conn.ReceiveMessage(context.Background())
		if err != nil {
			if !pgconn.Timeout(err) {
				return fmt.Errorf("receive replication message: %w", err)
			}
			if err := s.flush(ctx); err != nil {
				return err
			}
			if err := s.statusIfDue(false); err != nil {
				return err
			}
			continue
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if err := s.handle(ctx, m.Data); err != nil {
				return err
			}
		case *pgproto3.ErrorResponse:
			return classify(pgconn.ErrorResponseToPgError(m), cfg.Slot)
		case *pgproto3.CopyDone, *pgproto3.CommandComplete:
			return errors.New("server ended replication")
		}
		if len(s.batch) >= cfg.BatchSize || (len(s.batch) > 0 && time.Since(s.batchSince) >= cfg.Linger) {
			if err := s.flush(ctx); err != nil {
				return err
			}
		}
		if err := s.statusIfDue(false); err != nil {
			return err
		}
	}
}

func (s *stream) handle(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return fmt.Errorf("parse keepalive: %w", err)
		}
		if s.txn == nil && len(s.batch) == 0 {
			s.tracker.AdvanceIdle(cdc.LSN(ka.ServerWALEnd))
		}
		if ka.ReplyRequested {
			if s.pings.burst(time.Now()) {
				return fmt.Errorf("%w: the walsender asks for confirmations without pause", errGoingAway)
			}
			return s.sendStatus(false)
		}
		return nil
	case pglogrepl.XLogDataByteID:
		xld, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return fmt.Errorf("parse XLogData: %w", err)
		}
		return s.decode(ctx, xld.WALData)
	}
	return nil
}

func (s *stream) decode(ctx context.Context, payload []byte) error {
	n := len(s.batch)
	out, step, err := s.r.decoder.Decode(payload, s.batch)
	if err != nil {
		return fmt.Errorf("decode pgoutput: %w", err)
	}
	s.batch = out
	switch step {
	case StepBegin:
		s.txn = s.tracker.Open()
	case StepChange:
		if s.txn == nil {
			return errors.New("decode pgoutput: change outside a transaction")
		}
		out = dropStateEvents(out, n, s.r.cfg.Tables)
		s.batch = out
		if len(out) == n {
			return nil
		}
		if n == 0 {
			s.batchSince = time.Now()
		}
		s.txn.Add(len(out) - n)
		snaps := s.r.cfg.Snapshots
		for i := n; i < len(out); i++ {
			out[i].Ack = s.txn
			s.r.metrics.event(&out[i])
			if snaps != nil {
				snaps.Change(&out[i])
			}
		}
	case StepCommit:
		if s.txn == nil {
			return errors.New("decode pgoutput: commit outside a transaction")
		}
		end := s.r.decoder.Txn().EndLSN
		s.txn.Seal(end)
		s.txn = nil
		s.lastSealed = end
		s.r.metrics.transactions.Inc()
	case StepWatermark:
		if s.txn == nil || s.r.cfg.Snapshots == nil {
			return nil
		}
		msg := s.r.decoder.Message()
		if gate := s.r.cfg.Snapshots.Gate(msg.Content); gate != nil {
			if open, err := s.await(ctx, gate); !open {
				return err
			}
			n = len(s.batch)
		}
		out := s.r.cfg.Snapshots.Watermark(msg.Content, s.txn, s.batch)
		if len(out) == n {
			return nil
		}
		s.txn.Add(len(out) - n)
		s.emitted += len(out) - n
		s.r.decoder.Stamp(out[n:])
		s.batch = out
		if n == 0 {
			s.batchSince = time.Now()
		}
		s.r.metrics.eventRun(out[n:])
	case StepMessage:
		if s.txn == nil {
			msg := s.r.decoder.Message()
			s.tracker.Open().Seal(msg.LSN)
			s.lastSealed = max(s.lastSealed, msg.LSN)
		}
	}
	return nil
}

// StateSchema is the schema holding cdcd's own state (links, dead letters,
// audit). Its changes are not captured, even by a publication FOR ALL
// TABLES, unless a table of it is configured by name (cdcd.conflicts, to
// alert on conflicts).
const StateSchema = "cdcd"

// dropStateEvents removes the events of cdcd's own schema appended after
// index n, but for those of the tables named in configured.
func dropStateEvents(out []cdc.Event, n int, configured []Table) []cdc.Event {
	kept := n
	for i := n; i < len(out); i++ {
		if out[i].Schema != StateSchema || slices.Contains(configured, Table{Schema: StateSchema, Name: out[i].Table}) {
			out[kept] = out[i]
			kept++
		}
	}
	clear(out[kept:])
	return out[:kept]
}

// flush hands the pending batch to the bus. While the bus applies
// backpressure it keeps the server informed, so the walsender does not
// time out.
func (s *stream) flush(ctx context.Context) error {
	if len(s.batch) == 0 {
		return nil
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, s.r.cfg.StatusInterval)
		began := time.Now()
		err := s.r.pub.Publish(pctx, s.batch)
		cancel()
		if err == nil {
			s.r.metrics.publishWait.Observe(time.Since(began).Seconds())
			// The bus owns the events now. Size the next batch like this
			// one's changes: a full-size batch is large, and under light
			// load most batches hold a few events. A chunk's rows do not
			// count: they come as a slice of their own (Snapshots).
			s.batch = make([]cdc.Event, 0, min(s.r.cfg.BatchSize, max(64, 2*(len(s.batch)-s.emitted))))
			s.emitted = 0
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("publish: %w", err)
		}
		if s.tracker.Err() != nil {
			return fmt.Errorf("bus did not acknowledge an event: %w", s.tracker.Err())
		}
		if err := s.sendStatus(false); err != nil {
			return err
		}
	}
}

// await hands the pending batch to the bus and waits until gate is
// closed, keeping the server informed. It reports false, with no error,
// when ctx ended first.
func (s *stream) await(ctx context.Context, gate <-chan struct{}) (bool, error) {
	select {
	case <-gate:
		return true, nil
	default:
	}
	if err := s.flush(ctx); err != nil {
		if ctx.Err() != nil {
			return false, nil
		}
		return false, err
	}
	began := time.Now()
	defer func() { s.r.metrics.gateWait.Observe(time.Since(began).Seconds()) }()
	timer := time.NewTimer(time.Until(s.nextStatus))
	defer timer.Stop()
	for {
		select {
		case <-gate:
			return true, nil
		case <-ctx.Done():
			return false, nil
		case <-s.tracker.Failed():
			return false, fmt.Errorf("bus did not acknowledge an event: %w", s.tracker.Err())
		case <-timer.C:
			if err := s.statusIfDue(false); err != nil {
				return false, err
			}
			timer.Reset(time.Until(s.nextStatus))
		}
	}
}

func (s *stream) statusIfDue(reply bool) error {
	if time.Now().Before(s.nextStatus) {
		return nil
	}
	return s.sendStatus(reply)
}

// sendStatus reports the tracker's confirmed position as written, flushed
// and applied.
func (s *stream) sendStatus(reply bool) error {
	confirmed := s.tracker.Confirmed()
	now := time.Now()
	if err := sendStandbyStatus(context.Background(), s.conn, confirmed, now, reply); err != nil {
		return fmt.Errorf("send standby status: %w", err)
	}
	s.nextStatus = now.Add(s.r.cfg.StatusInterval)
	if confirmed != s.sent {
		s.sent = confirmed
		s.r.confirmed.Store(uint64(confirmed))
		s.r.metrics.confirmed.Set(float64(confirmed))
	}
	return nil
}

// drain stops reading and waits, up to the drain timeout, for what was
// handed to the bus to be acknowledged; then it confirms it and ends the
// copy.
func (s *stream) drain(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.r.cfg.DrainTimeout)
	defer cancel()
	if err := s.flush(dctx); err == nil && !s.waitConfirmed(dctx, s.lastSealed) {
		s.r.log.Warn().Stringer("confirmed_lsn", s.tracker.Confirmed()).Stringer("pending_lsn", s.lastSealed).
			Msg("stopped before the bus acknowledged everything; the rest is read again on start")
	}
	if err := s.sendStatus(false); err != nil {
		return nil // the server keeps the last confirmation it got
	}
	s.conn.Frontend().Send(&pgproto3.CopyDone{})
	_ = s.conn.Frontend().Flush()
	s.r.log.Info().Stringer("confirmed_lsn", s.tracker.Confirmed()).Msg("replication stopped")
	return nil
}

// waitConfirmed polls until the tracker confirmed lsn, reporting whether it
// did before ctx ended or a nack.
func (s *stream) waitConfirmed(ctx context.Context, lsn cdc.LSN) bool {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for s.tracker.Confirmed() < lsn {
		if s.tracker.Err() != nil {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}
