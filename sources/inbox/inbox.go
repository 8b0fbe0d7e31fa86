// Package inbox makes webhook changes durable in Postgres when cdcd runs
// on one machine without Kafka. Accept writes changes to cdcd.inbox, in
// the transaction that records their delivery ids, and returns once it
// committed; Run hands them to the in-process bus in arrival order and
// deletes each once the bus acknowledged it. Rows left by a crash are
// handed over again at the next start.
//
// Rows and delivery ids belong to one deployment (its postgres.slot):
// several cdcd deployments may share the database, each with an inbox of
// its own. The tables are made by store's migrations.
package inbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/sources/webhook"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Defaults.
const (
	// DefaultMaxBatch bounds the changes one commit takes.
	DefaultMaxBatch = 2000
	// DefaultMaxInFlight bounds the changes handed to the bus and not yet
	// acknowledged.
	DefaultMaxInFlight = 10_000
	// readBatch bounds the rows one read of the inbox returns.
	readBatch = 1000
	// poll is how often Run looks for rows when nobody signalled any.
	poll = time.Second
	// deleteEvery is how often acknowledged rows are deleted.
	deleteEvery = 50 * time.Millisecond
)

// Config names the inbox's deployment and sizes it. Zero sizes mean the
// defaults.
type Config struct {
	// Deployment owns the rows: only its inbox reads and deletes them.
	// Required; cdcd uses its postgres.slot.
	Deployment string
	// Systems are the systems whose webhooks this deployment receives:
	// their rows and delivery ids from before rows were kept per
	// deployment are adopted at Open.
	Systems     []string
	MaxBatch    int
	MaxInFlight int
}

// Inbox is a webhook.Acceptor backed by cdcd.inbox.
type Inbox struct {
	pool    *pgxpool.Pool
	cfg     Config
	log     zerolog.Logger
	m       *metrics
	src     cdc.SourceInfo
	reqs    chan *request
	stop    chan struct{}
	stopped chan struct{}
	wake    chan struct{} // a commit added rows
	close   sync.Once
}

type request struct {
	system  string
	changes []webhook.Change
	done    chan error
}

// Open adopts the rows of cfg.Systems that belong to no deployment and
// starts accepting. Close stops it.
func Open(ctx context.Context, pool *pgxpool.Pool, cfg Config, log zerolog.Logger, reg prometheus.Registerer) (*Inbox, error) {
	if cfg.Deployment == "" {
		return nil, errors.New("inbox: a deployment is required")
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	var pending int64
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if len(cfg.Systems) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE cdcd.inbox SET deployment = $1 WHERE deployment = '' AND system = ANY($2)`,
				cfg.Deployment, cfg.Systems); err != nil {
				return fmt.Errorf("adopt rows of %v in cdcd.inbox: %w", cfg.Systems, err)
			}
			if err := webhook.AdoptDeliveries(ctx, tx, cfg.Deployment, cfg.Systems); err != nil {
				return err
			}
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM cdcd.inbox WHERE deployment = $1`, cfg.Deployment).Scan(&pending); err != nil {
			return fmt.Errorf("count cdcd.inbox (made by cdcd's migrations): %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open the inbox: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	m.pending.Set(float64(pending))
	b := &Inbox{
		pool: pool, cfg: cfg, m: m,
		log:     log.With().Str("component", "inbox").Str("deployment", cfg.Deployment).Logger(),
		reqs:    make(chan *request, 1024),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
		wake:    make(chan struct{}, 1),
	}
	if pending > 0 {
		b.log.Info().Int64("changes", pending).Msg("inbox holds changes from before the last stop; handing them over again")
	}
	go b.commitLoop()
	return b, nil
}

// ErrClosed is returned by Accept after Close.
var ErrClosed = errors.New("inbox closed")

// Accept implements webhook.Acceptor: it returns nil once the changes are
// committed to cdcd.inbox. Changes whose DeliveryID was accepted before
// (in cdcd.webhook_deliveries) are dropped in that same transaction, so a
// redelivery is stored once however the copies race. Concurrent calls
// share commits.
func (b *Inbox) Accept(ctx context.Context, system string, changes []webhook.Change) error {
	if len(changes) == 0 {
		return nil
	}
	req := &request{system: system, changes: changes, done: make(chan error, 1)}
	select {
	case b.reqs <- req:
	case <-b.stop:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("queue %d changes for the inbox: %w", len(changes), ctx.Err())
	}
	select {
	case err := <-req.done:
		return err
	case <-b.stopped:
		// Closed with the request queued: it may have committed, which
		// a retry then finds.
		return ErrClosed
	case <-ctx.Done():
		// The commit may still land; the sender retries and the retry is
		// dropped as a duplicate.
		return fmt.Errorf("commit %d changes to the inbox: %w", len(changes), ctx.Err())
	}
}

// Close stops accepting; Accept calls waiting for a commit get ErrClosed.
func (b *Inbox) Close() {
	b.close.Do(func() { close(b.stop) })
	<-b.stopped
}

// commitLoop is the one writer of cdcd.inbox. One writer keeps ids in
// commit order, which Run's cursor relies on; requests that arrive while a
// commit runs share the next one.
func (b *Inbox) commitLoop() {
	defer close(b.stopped)
	var batch []*request
	for {
		batch = batch[:0]
		select {
		case r := <-b.reqs:
			batch = append(batch, r)
		case <-b.stop:
			b.refuse()
			return
		}
		n := len(batch[0].changes)
	more:
		for n < b.cfg.MaxBatch {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
				n += len(r.changes)
			default:
				break more
			}
		}
		err := b.commit(batch)
		for _, r := range batch {
			r.done <- err
		}
	}
}

// refuse answers the requests still queued at Close.
func (b *Inbox) refuse() {
	for {
		select {
		case r := <-b.reqs:
			r.done <- ErrClosed
		default:
			return
		}
	}
}

// commit stores a batch in one transaction: first the delivery ids, then
// the changes whose id was new (or that have none).
func (b *Inbox) commit(batch []*request) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), webhook.DefaultTimeout)
	defer cancel()

	type pair struct{ system, id string }
	var systems, ids []string
	owner := map[pair]*webhook.Change{}
	for _, r := range batch {
		for i := range r.changes {
			c := &r.changes[i]
			if c.DeliveryID == "" {
				continue
			}
			p := pair{r.system, c.DeliveryID}
			if _, ok := owner[p]; ok {
				continue
			}
			owner[p] = c
			systems = append(systems, r.system)
			ids = append(ids, c.DeliveryID)
		}
	}

	tx, err := b.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("inbox: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	fresh := make(map[pair]bool, len(ids))
	if len(ids) > 0 {
		rows, err := tx.Query(ctx, `
			INSERT INTO cdcd.webhook_deliveries (deployment, system, delivery_id)
			SELECT $1, * FROM unnest($2::text[], $3::text[])
			ON CONFLICT (deployment, system, delivery_id) DO NOTHING
			RETURNING system, delivery_id`, b.cfg.Deployment, systems, ids)
		if err != nil {
			return fmt.Errorf("inbox: record delivery ids: %w", err)
		}
		var p pair
		_, err = pgx.ForEachRow(rows, []any{&p.system, &p.id}, func() error {
			fresh[p] = true
			return nil
		})
		if err != nil {
			return fmt.Errorf("inbox: record delivery ids: %w", err)
		}
	}

	var rowSystems, rowIDs []string
	var keys, envelopes [][]byte
	dups := map[string]int{}
	now := time.Now()
	for _, r := range batch {
		for i := range r.changes {
			c := &r.changes[i]
			if c.DeliveryID != "" {
				p := pair{r.system, c.DeliveryID}
				if !fresh[p] || owner[p] != c {
					dups[r.system]++
					continue
				}
			}
			e := c.Event
			e.Ack = nil
			rowSystems = append(rowSystems, r.system)
			rowIDs = append(rowIDs, c.DeliveryID)
			keys = append(keys, cdc.AppendKey(nil, &e))
			envelopes = append(envelopes, cdc.AppendEnvelope(nil, &e, &b.src, now))
		}
	}
	if len(rowIDs) > 0 {
		_, err = tx.Exec(ctx, `
			INSERT INTO cdcd.inbox (deployment, system, delivery_id, key, envelope)
			SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bytea[], $5::bytea[])`,
			b.cfg.Deployment, rowSystems, rowIDs, keys, envelopes)
		if err != nil {
			return fmt.Errorf("inbox: store %d changes: %w", len(rowIDs), err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("inbox: commit: %w", err)
	}
	b.m.commits.Observe(time.Since(start).Seconds())
	b.m.batch.Observe(float64(len(batch)))
	for s, n := range dups {
		b.m.duplicates.WithLabelValues(s).Add(float64(n))
	}
	for _, s := range rowSystems {
		b.m.accepted.WithLabelValues(s).Inc()
	}
	if len(rowIDs) > 0 {
		b.m.pending.Add(float64(len(rowIDs)))
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
	return nil
}
