package pgwal

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
)

// Config says what to stream and how.
type Config struct {
	URL         string
	Slot        string
	Publication string
	// Tables to publish; empty means all tables.
	Tables []Table
	// InsertsOnly are tables of Tables whose every pipeline takes inserts
	// only. One without a replica identity is published for inserts only
	// (in Publication + "_inserts"), so the application may still update
	// and delete its rows; any other table without one is refused, with
	// the fix, before a publication is touched.
	InsertsOnly []Table
	// StatusInterval is how often the confirmed position is reported to the
	// server (and so how far the slot trails the bus's acks).
	StatusInterval time.Duration
	// Heartbeat is how often a logical message is written so that an idle
	// slot advances while other databases are busy; 0 disables it.
	Heartbeat time.Duration
	// DrainTimeout bounds how long a stop waits for in-flight events.
	DrainTimeout time.Duration
	// BatchSize and Linger bound how many events are handed to the bus at
	// once and how long a partial batch waits.
	BatchSize int
	Linger    time.Duration
	// Snapshots, when set, merges a backfill's table reads into the stream.
	Snapshots Snapshots
}

// Snapshots merges rows read from tables into the stream (the watermark
// method: a backfill writes a transactional cdcd.watermark message before
// and after reading a chunk of rows). The stream calls it from its one
// goroutine, in stream order:
//
// Change sees every change event handed downstream (after a low watermark,
// a change to a key of the chunk means the row read is not newer than the
// stream). Watermark is called at each cdcd.watermark message with its
// content; it appends to out the events to emit at that point, which the
// stream places in the message's transaction and tracks like its changes:
// their Ack is set to one that settles ack too (the transaction's share
// of the tracker), so the slot is confirmed past the watermark only once
// they are durable.
//
// Gate is called at each cdcd.watermark message before Watermark: when it
// returns a channel, the stream first hands the events before the message
// to the bus, then waits for the channel to close (answering the server
// meanwhile) and only then calls Watermark. It lets a backfill write a
// chunk's high watermark early while holding its rows back until the
// chunk before is durable. The stream stops there meanwhile, so the
// channel must close once what was handed to the bus is durable, whatever
// comes after the message.
type Snapshots interface {
	Change(e *cdc.Event)
	Gate(content []byte) <-chan struct{}
	Watermark(content []byte, ack cdc.Acker, out []cdc.Event) []cdc.Event
}

func (c *Config) setDefaults() {
	if c.StatusInterval <= 0 {
		c.StatusInterval = time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1024
	}
	if c.Linger <= 0 {
		c.Linger = 5 * time.Millisecond
	}
}

// Reader streams a logical replication slot into a cdc.Publisher. It
// creates the publication and the slot when they are missing, resumes from
// the slot's confirmed position, and confirms only what the bus
// acknowledged. It never drops the slot.
type Reader struct {
	cfg     Config
	pub     cdc.Publisher
	log     zerolog.Logger
	metrics *metrics
	decoder *Decoder
	pk      map[Table][]string // primary keys, refreshed each session
	// publications streamed from, set each session
	publications []string

	confirmed atomic.Uint64 // last position reported to the server
	streaming atomic.Bool
	// standbyChecks counts the times this reader found the slot busy.
	standbyChecks atomic.Int64
	abort         atomic.Pointer[context.CancelCauseFunc] // ends the current session
}

// NewReader validates the configuration; it does not connect.
func NewReader(cfg Config, pub cdc.Publisher, log zerolog.Logger, reg prometheus.Registerer) (*Reader, error) {
	cfg.setDefaults()
	if cfg.URL == "" || cfg.Slot == "" || cfg.Publication == "" {
		return nil, errors.New("pgwal: url, slot and publication are required")
	}
	if _, err := pgconn.ParseConfig(cfg.URL); err != nil {
		return nil, fmt.Errorf("pgwal: parse url: %w", err)
	}
	r := &Reader{
		cfg:     cfg,
		pub:     pub,
		log:     log.With().Str("component", "pgwal").Str("slot", cfg.Slot).Logger(),
		metrics: newMetrics(reg),
	}
	r.decoder = NewDecoder(DecoderOptions{
		Log: r.log,
		PrimaryKey: func(schema, table string) []string {
			return r.pk[Table{schema, table}]
		},
	})
	return r, nil
}

// Streaming reports whether the reader currently streams from the slot
// (false while connecting, waiting for a busy slot, or backing off).
func (r *Reader) Streaming() bool { return r.streaming.Load() }

// Confirmed is the last position confirmed to the server.
func (r *Reader) Confirmed() cdc.LSN { return cdc.LSN(r.confirmed.Load()) }

// standbyPoll is how often a standby checks whether the slot is free.
const standbyPoll = time.Second

// Run streams until ctx ends, reconnecting with backoff after errors. It
// returns nil after a clean stop and an error only for problems that
// retrying cannot fix (wal_level, privileges, missing tables, ...).
func (r *Reader) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { r.monitor(gctx); return nil })
	g.Go(func() error {
		backoff := cdc.Backoff{Min: time.Second, Max: 30 * time.Second}
		standingBy := false
		for {
			began := time.Now()
			err := r.session(gctx)
			r.metrics.standby.Set(0)
			r.streaming.Store(false)
			if gctx.Err() != nil {
				return nil
			}
			if IsPermanent(err) {
				return err
			}
			if time.Since(began) > time.Minute {
				backoff.Reset()
			}
			wait := backoff.Next()
			switch {
			case errors.Is(err, errSlotBusy):
				// A standby checks often and at a steady pace, so that it
				// takes over within seconds of the active process dying
				// (Postgres frees the slot as soon as the walsender's
				// connection drops). Logged once, not at every check.
				wait = cdc.Jitter(standbyPoll)
				backoff.Reset()
				r.metrics.standby.Set(1)
				r.standbyChecks.Add(1)
				if !standingBy {
					r.log.Info().Err(err).Float64("check_every_seconds", standbyPoll.Seconds()).Msg("slot held by another process; standing by")
				}
				standingBy = true
				if !cdc.Sleep(gctx, wait) {
					return nil
				}
				continue
			}
			standingBy = false
			switch {
			case errors.Is(err, errGoingAway):
				r.metrics.reconnects.Inc()
				r.log.Info().Err(err).Float64("retry_in_seconds", wait.Seconds()).
					Msg("released the replication stream for the database's shutdown; resuming from the confirmed position once it is back")
			default:
				r.metrics.reconnects.Inc()
				r.log.Warn().Err(err).Float64("retry_in_seconds", wait.Seconds()).Msg("replication interrupted; reconnecting")
			}
			if !cdc.Sleep(gctx, wait) {
				return nil
			}
		}
	})
	err := g.Wait()
	if err != nil {
		return fmt.Errorf("capture from slot %q: %w", r.cfg.Slot, err)
	}
	return nil
}
