package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/cdcd-dev/cdcd/backfill"
	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/pgwal"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/echo"
	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/server"
	"github.com/cdcd-dev/cdcd/sources/imports"
	"github.com/cdcd-dev/cdcd/store"
)

// Options are what the daemon takes besides its config.
type Options struct {
	Role Role
	// Registry names the plugins; nil means Components().
	Registry *config.Registry
	Log      zerolog.Logger
	// Stdout is where the stdout system writes; nil means os.Stdout.
	Stdout io.Writer
	// Version is cdcd's version, for the log and the events' source block.
	Version string
}

// Daemon is cdcd built from one config, ready to Run once.
type Daemon struct {
	cfg     *config.Config
	role    Role
	reg     *config.Registry
	log     zerolog.Logger
	metrics *prometheus.Registry
	server  *server.Server
	env     config.Env
	version string

	// cdcd's state store and the pool for lookups, opened by openStore
	// when a part needs them.
	store   *store.Store
	lookups *pgxpool.Pool

	parts   []func(context.Context) error // run until the context ends
	closers []func(context.Context) error // run last first once every part stopped
	release []func()                      // after the closers, or when New fails

	// echoes counts the echoes of cdcd's own writes that were suppressed
	// (nil in the capture role).
	echoes *echo.Counter
	// detected counts conflicts, by pipeline and rule; policies are the
	// inbound pipelines' conflict policies, by pipeline.
	detected *prometheus.CounterVec
	policies map[string]store.ConflictPolicy

	reader    *pgwal.Reader
	merger    *backfill.Merger              // merges backfills into the reader's stream
	forgets   func(pipelines []string) bool // whether the in-process bus's sinks of the pipelines forget their events, nil in Kafka mode
	pipelines int
	// imports are what each inbound pipeline whose system lists records
	// imports, by pipeline.
	imports map[string]imports.Source
}

// New builds the daemon cfg describes for opts.Role. It opens (and
// migrates) cdcd's state store when a part needs it, and connects to
// nothing else. What it opened is released when it fails.
func New(ctx context.Context, cfg *config.Config, opts Options) (_ *Daemon, err error) {
	d := &Daemon{cfg: cfg, role: opts.Role, reg: opts.Registry, log: opts.Log, version: opts.Version}
	if d.reg == nil {
		d.reg = Components()
	}
	defer func() {
		if err != nil {
			d.releaseAll()
		}
	}()
	if cfg.Kafka == nil && d.role != RoleAll {
		return nil, configError(fmt.Errorf("--role %s needs a kafka: section; the in-process bus runs capture and sinks in one process", d.role))
	}
	if err := d.buildBase(opts.Stdout); err != nil {
		return nil, err
	}
	in, err := d.buildIntake(ctx)
	if err != nil {
		return nil, err
	}
	var pls []pipeline
	if d.role != RoleCapture {
		if pls, err = d.buildPipelines(ctx, in.acceptor); err != nil {
			return nil, err
		}
	}
	if err := d.buildConsumers(pls); err != nil {
		return nil, err
	}
	if d.role == RoleSinks && in.publisher != nil { // the hand-over to the inbound topics
		d.closes(in.publisher.Close)
	}
	if d.role != RoleSinks {
		if err := d.buildCapture(ctx, pls, in); err != nil {
			return nil, err
		}
	}
	if d.role != RoleCapture {
		d.buildWorkers(pls)
	}
	// Before the reader runs: cdcd's state is migrated before the slot is
	// created, since a slot waits for the transactions open then.
	if err := d.buildJobs(ctx, in); err != nil {
		return nil, err
	}
	if err := d.buildHealth(ctx, pls); err != nil {
		return nil, err
	}
	if d.store != nil {
		(&conflictsAPI{store: d.store, log: d.log}).mount(d.admin)
		if err := d.metrics.Register(d.store.ConflictMetrics()); err != nil {
			return nil, err
		}
	}
	d.runs(func(ctx context.Context) error { return d.server.Run(ctx) })
	return d, nil
}

// buildBase makes what every part shares: the metrics registry, the
// rate limiters of vendor accounts, the HTTP server.
func (d *Daemon) buildBase(stdout io.Writer) error {
	if stdout == nil {
		stdout = os.Stdout
	}
	d.metrics = prometheus.NewRegistry()
	d.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	pgCfg, err := pgconn.ParseConfig(d.cfg.Postgres.URL)
	if err != nil {
		return configError(fmt.Errorf("postgres.url: %w", err))
	}
	source := cdc.SourceInfo{Name: "cdcd", DB: pgCfg.Database, Version: d.version}
	if d.cfg.Kafka != nil {
		source.Name = d.cfg.Kafka.TopicPrefix
	}
	limiters := ratelimit.NewLimiters()
	d.metrics.MustRegister(limiters)
	d.env = config.Env{Log: d.log, Metrics: d.metrics, Stdout: stdout, Source: source, Limiters: limiters}
	h := d.cfg.HTTP
	d.server = server.New(h.Listen, server.Limits{
		ReadTimeout: h.ReadTimeout, WriteTimeout: h.WriteTimeout, IdleTimeout: h.IdleTimeout,
		MaxConnections: h.MaxConnections,
	}, d.log, d.metrics)
	return nil
}

// openStore opens cdcd's state store (migrating it) and the pool for
// lookups, once.
func (d *Daemon) openStore(ctx context.Context) (*store.Store, error) {
	if d.store != nil {
		return d.store, nil
	}
	st, err := store.Open(ctx, d.cfg.Postgres.URL, d.log)
	if err != nil {
		return nil, fmt.Errorf("open cdcd's state in postgres: %w", err)
	}
	d.store = st
	d.release = append(d.release, st.Close)
	pool, err := pgxpool.New(ctx, d.cfg.Postgres.URL) // connects lazily
	if err != nil {
		return nil, configError(fmt.Errorf("postgres.url: %w", err))
	}
	d.lookups = pool
	d.release = append(d.release, pool.Close)
	return st, nil
}

// runs adds a part that runs until ctx ends; an error from it stops the
// daemon.
func (d *Daemon) runs(run func(ctx context.Context) error) { d.parts = append(d.parts, run) }

// closes adds what to close once every part stopped; closers run last
// first.
func (d *Daemon) closes(c func(context.Context) error) { d.closers = append(d.closers, c) }

// ready adds a readiness check to /readyz.
func (d *Daemon) ready(name string, c server.Check) { d.server.Ready(name, c) }

// Run runs every part until ctx ends or one of them fails, then closes
// what New built, last first, and releases the store. A clean stop
// returns nil.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.releaseAll()
	g, gctx := errgroup.WithContext(ctx)
	for _, run := range d.parts {
		g.Go(func() error { return run(gctx) })
	}
	d.log.Info().Str("version", d.version).Str("bus", BusName(d.cfg)).Stringer("role", d.role).
		Int("pipelines", d.pipelines).Msg("cdcd starting")
	err := g.Wait()
	// What the sinks could not deliver by now is not acknowledged: the
	// reader (or the Kafka consumers) take it up again on the next start.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	for i := len(d.closers) - 1; i >= 0; i-- {
		if cerr := d.closers[i](cctx); cerr != nil {
			d.log.Warn().Err(cerr).Msg("closing")
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	ev := d.log.Info()
	if d.reader != nil {
		ev = ev.Stringer("confirmed_lsn", d.reader.Confirmed())
	}
	ev.Msg("cdcd stopped")
	return nil
}

// releaseAll releases the store, the pool and the dead-letter topics,
// last opened first.
func (d *Daemon) releaseAll() {
	for i := len(d.release) - 1; i >= 0; i-- {
		d.release[i]()
	}
	d.release = nil
}

// A stop ends within about ten seconds whatever the sinks are doing: the
// reader waits drainTimeout for the bus to acknowledge what it was handed
// (the HTTP server finishes its requests meanwhile), then the buses and
// sinks get closeTimeout to finish their writes before those are cut.
const (
	drainTimeout = 3 * time.Second
	closeTimeout = 3 * time.Second
)

// How often the pipelines' workers run.
const (
	replayEvery   = 10 * time.Second // dead letters due for a replay
	conflictEvery = time.Minute      // conflicts' reminders and escalations
)

// BusName is the bus cfg runs on: "kafka" or "in-process".
func BusName(cfg *config.Config) string {
	if cfg.Kafka != nil {
		return "kafka"
	}
	return "in-process"
}
