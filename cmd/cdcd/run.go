package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/kafkabus"
	"github.com/cdcd-dev/cdcd/cdc/pgwal"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/server"
	"github.com/cdcd-dev/cdcd/sinks/file"
	"github.com/cdcd-dev/cdcd/sources/webhook"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
)

func runCommand() *cobra.Command {
	var path, roleName string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Stream changes from Postgres to the bus and the configured systems",
		Long: `run creates the publication and replication slot if they are missing, then
streams every committed change of the configured tables. With kafka: in the
config, events go to Kafka topics <prefix>.<schema>.<table>; without it, the
in-process bus delivers them to the pipelines' systems (standard output when
no pipeline is configured). The slot is confirmed only once the bus
acknowledged, so a crash or restart loses nothing. SIGINT or SIGTERM stops
cleanly.

With Kafka, --role splits the work across processes and machines: "capture"
runs only the reader (one per slot; a second one stands by), "sinks" runs
only the pipelines' writers as Kafka consumer groups (run as many as you
like), "all" (the default) runs both.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := parseRole(roleName)
			if err != nil {
				return err
			}
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			if cfg.Kafka == nil && r != roleAll {
				return usageError(fmt.Errorf("--role %s needs a kafka: section; the in-process bus runs capture and sinks in one process", roleName))
			}
			stopProfile, err := startCPUProfile()
			if err != nil {
				return err
			}
			defer stopProfile()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return run(ctx, cfg, r)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "cdcd.yaml", "config file")
	cmd.Flags().StringVar(&roleName, "role", "all", "what this process runs: capture, sinks or all")
	return cmd
}

type role int

const (
	roleAll role = iota
	roleCapture
	roleSinks
)

func parseRole(s string) (role, error) {
	switch s {
	case "all", "":
		return roleAll, nil
	case "capture":
		return roleCapture, nil
	case "sinks":
		return roleSinks, nil
	}
	return 0, usageError(fmt.Errorf("--role %q: want capture, sinks or all", s))
}

func (r role) String() string { return [...]string{"all", "capture", "sinks"}[r] }

func run(ctx context.Context, cfg *config.Config, r role) error {
	log := newLogger(cfg.Log)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	pgCfg, err := pgconn.ParseConfig(cfg.Postgres.URL)
	if err != nil {
		return usageError(fmt.Errorf("postgres.url: %w", err))
	}
	source := cdc.SourceInfo{Name: "cdcd", DB: pgCfg.Database, Version: cdcdVersion()}
	if cfg.Kafka != nil {
		source.Name = cfg.Kafka.TopicPrefix
	}
	limiters := ratelimit.NewLimiters()
	reg.MustRegister(limiters)
	env := config.Env{Log: log, Metrics: reg, Stdout: os.Stdout, Source: source, Limiters: limiters}
	srv := server.New(cfg.HTTP.Listen, server.Limits{
		ReadTimeout: cfg.HTTP.ReadTimeout, WriteTimeout: cfg.HTTP.WriteTimeout, IdleTimeout: cfg.HTTP.IdleTimeout,
		MaxConnections: cfg.HTTP.MaxConnections,
	}, log, reg)
	g, gctx := errgroup.WithContext(ctx)
	var closers []func(context.Context) error // run in reverse order after the stop

	var pipelines []pipeline
	out := &outbound{} // the capture role needs only its store, for webhook dedupe
	defer func() { out.close() }()
	if r != roleCapture {
		o, err := buildOutbound(ctx, cfg, env)
		if err != nil {
			return err
		}
		out = o
		pipelines = out.pipelines
	}
	var consumers []*kafkabus.Consumer
	if r != roleCapture && cfg.Kafka != nil {
		for _, p := range pipelines {
			c, err := kafkabus.NewConsumer(kafkabus.ConsumerConfig{
				Brokers:  cfg.Kafka.Brokers,
				Group:    cfg.Kafka.TopicPrefix + "." + p.name,
				Topics:   []string{kafkabus.TopicName(cfg.Kafka.TopicPrefix, p.from.Schema, p.from.Name)},
				System:   p.system,
				OnOrigin: out.echoes.OnOrigin(),
			}, p.sink, log, reg)
			if err != nil {
				return usageError(fmt.Errorf("pipeline %s: %w", p.name, err))
			}
			consumers = append(consumers, c)
			closers = append(closers, p.sink.Close)
		}
	}
	if r == roleSinks && cfg.Kafka != nil && len(out.policies) > 0 {
		// Outbound pipelines hand records found changed in a system over
		// to the inbound topics.
		pub, err := kafkabus.New(kafkaConfig(cfg, env.Source), log, reg)
		if err != nil {
			return usageError(err)
		}
		closers = append(closers, pub.Close)
		out.intake = webhook.PublishAcceptor{Publisher: pub}
	}
	var reader *pgwal.Reader
	if r != roleSinks {
		pub, err := newPublisher(cfg, out, env)
		if err != nil {
			return err
		}
		closers = append(closers, pub.Close) // closes the in-process sinks too
		// Webhooks are received where events can be published: in-process,
		// or by capture processes in Kafka mode.
		more, err := intake(ctx, g, gctx, cfg, out, pub, srv.Handle, env)
		if err != nil {
			return err
		}
		closers = append(closers, more...)
		if reader, err = newReader(cfg, pub, log, reg); err != nil {
			return err
		}
	}
	if out.store != nil {
		(&conflictsAPI{store: out.store, token: cfg.HTTP.AdminToken, log: log}).mount(srv.Handle)
		if err := reg.Register(out.store.ConflictMetrics()); err != nil {
			return err
		}
	}
	// The reader and the workers start once everything they hand changes
	// to is in place (outbound pipelines may hand records to the intake).
	if reader != nil {
		srv.Ready("capture", func() error {
			if !reader.Streaming() {
				return errors.New("not streaming from the replication slot")
			}
			return nil
		})
		g.Go(func() error {
			if err := reader.Run(gctx); err != nil {
				return err
			}
			return gctx.Err() // a clean stop of the reader stops the rest
		})
	}
	if r != roleCapture {
		for _, p := range pipelines {
			if p.delivery != nil {
				srv.Ready("pipeline "+p.name, p.delivery.Ready)
				g.Go(func() error { return p.delivery.RunReplays(gctx, 10*time.Second) })
			}
		}
		if out.store != nil && len(out.policies) > 0 {
			g.Go(func() error { return out.store.RunConflictSchedule(gctx, time.Minute, out.policies) })
		}
		if out.store != nil && cfg.Audit.Retention > 0 {
			g.Go(func() error { return out.store.RunRetention(gctx, cfg.Audit.Retention, time.Hour) })
		}
	}
	for _, c := range consumers {
		g.Go(func() error { return c.Run(gctx) })
	}
	g.Go(func() error { return srv.Run(gctx) })

	log.Info().Str("version", cdcdVersion()).Str("bus", busName(cfg)).Stringer("role", r).
		Int("pipelines", len(pipelines)).Msg("cdcd starting")
	err = g.Wait()
	// What the sinks could not deliver by now is not acknowledged: the
	// reader (or the Kafka consumers) take it up again on the next start.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	for i := len(closers) - 1; i >= 0; i-- {
		if cerr := closers[i](cctx); cerr != nil {
			log.Warn().Err(cerr).Msg("closing")
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	ev := log.Info()
	if reader != nil {
		ev = ev.Stringer("confirmed_lsn", reader.Confirmed())
	}
	ev.Msg("cdcd stopped")
	return nil
}

// A stop ends within about ten seconds whatever the sinks are doing: the
// reader waits drainTimeout for the bus to acknowledge what it was handed
// (the HTTP server finishes its requests meanwhile), then the buses and
// sinks get closeTimeout to finish their writes before those are cut.
const (
	drainTimeout = 3 * time.Second
	closeTimeout = 3 * time.Second
)

func newReader(cfg *config.Config, pub cdc.Publisher, log zerolog.Logger, reg prometheus.Registerer) (*pgwal.Reader, error) {
	tables := make([]pgwal.Table, 0, len(cfg.Postgres.Tables))
	for _, t := range cfg.Postgres.Tables {
		tt, err := pgwal.ParseTable(t)
		if err != nil {
			return nil, usageError(err)
		}
		tables = append(tables, tt)
	}
	reader, err := pgwal.NewReader(pgwal.Config{
		URL:            cfg.Postgres.URL,
		Slot:           cfg.Postgres.Slot,
		Publication:    cfg.Postgres.Publication,
		Tables:         tables,
		InsertsOnly:    insertsOnly(cfg),
		StatusInterval: cfg.Postgres.StatusInterval,
		Heartbeat:      cfg.Postgres.Heartbeat,
		DrainTimeout:   drainTimeout,
	}, pub, log, reg)
	if err != nil {
		return nil, usageError(err)
	}
	return reader, nil
}

// newPublisher builds the Kafka producer, or the in-process bus with one
// route per outbound pipeline (every change to standard output when there
// is no pipeline at all).
func newPublisher(cfg *config.Config, o *outbound, env config.Env) (cdc.Publisher, error) {
	if cfg.Kafka != nil {
		p, err := kafkabus.New(kafkaConfig(cfg, env.Source), env.Log, env.Metrics)
		if err != nil {
			return nil, usageError(err)
		}
		return p, nil
	}
	var routes []cdc.Route
	for _, p := range o.pipelines {
		if !p.inbound {
			routes = append(routes, route(p))
		}
	}
	if len(cfg.Pipelines) == 0 {
		routes = append(routes, cdc.Route{Name: "stdout", System: "stdout", Sink: file.NewStdout(env)})
	}
	return cdc.NewLocalBus(cdc.LocalBusConfig{OnOrigin: o.echoes.OnOrigin()}, routes, env.Log, env.Metrics), nil
}

// kafkaConfig is the bus's Kafka configuration.
func kafkaConfig(cfg *config.Config, source cdc.SourceInfo) kafkabus.Config {
	k := cfg.Kafka
	return kafkabus.Config{
		Brokers:           k.Brokers,
		TopicPrefix:       k.TopicPrefix,
		ClientID:          k.ClientID,
		CreateTopics:      k.Topics.Create,
		Partitions:        k.Topics.Partitions,
		ReplicationFactor: k.Topics.ReplicationFactor,
		BatchSize:         k.Batch.Size,
		BatchBytes:        k.Batch.Bytes,
		Linger:            k.Batch.Linger,
		BufferEvents:      k.Buffer.Events,
		BufferBytes:       k.Buffer.Bytes,
		Compression:       k.Compression,
		Format:            k.Format,
		NoTombstones:      !k.Tombstones,
		Schemas:           k.Schemas,
		Source:            source,
	}
}

func newLogger(c config.Log) zerolog.Logger {
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil || c.Level == "" {
		level = zerolog.InfoLevel
	}
	var log zerolog.Logger
	if c.Format == "console" {
		log = zerolog.New(consoleWriter(os.Stderr))
	} else {
		log = zerolog.New(os.Stderr)
	}
	return log.Level(level).With().Timestamp().Logger()
}
