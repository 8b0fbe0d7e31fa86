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
	"github.com/cdcd-dev/cdcd/server"
	"github.com/cdcd-dev/cdcd/sinks/file"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
)

func runCommand() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Stream changes from Postgres to the bus and the configured systems",
		Long: `run creates the publication and replication slot if they are missing, then
streams every committed change of the configured tables. With kafka: in the
config, events go to Kafka topics <prefix>.<schema>.<table>; without it, the
in-process bus delivers them to the pipelines' systems (standard output when
no pipeline is configured). The slot is confirmed only once the bus
acknowledged, so a crash or restart loses nothing. SIGINT or SIGTERM stops
cleanly.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return run(ctx, cfg)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "cdcd.yaml", "config file")
	return cmd
}

func run(ctx context.Context, cfg *config.Config) error {
	log := newLogger(cfg.Log)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	pgCfg, err := pgconn.ParseConfig(cfg.Postgres.URL)
	if err != nil {
		return usageError(fmt.Errorf("postgres.url: %w", err))
	}
	tables := make([]pgwal.Table, 0, len(cfg.Postgres.Tables))
	for _, t := range cfg.Postgres.Tables {
		tt, err := pgwal.ParseTable(t)
		if err != nil {
			return usageError(err)
		}
		tables = append(tables, tt)
	}
	source := cdc.SourceInfo{Name: "cdcd", DB: pgCfg.Database, Version: cdcdVersion()}
	if cfg.Kafka != nil {
		source.Name = cfg.Kafka.TopicPrefix
	}

	pub, err := newBus(ctx, cfg, tables, source, log, reg)
	if err != nil {
		return err
	}
	reader, err := pgwal.NewReader(pgwal.Config{
		URL:            cfg.Postgres.URL,
		Slot:           cfg.Postgres.Slot,
		Publication:    cfg.Postgres.Publication,
		Tables:         tables,
		StatusInterval: cfg.Postgres.StatusInterval,
		Heartbeat:      cfg.Postgres.Heartbeat,
	}, pub, log, reg)
	if err != nil {
		return usageError(err)
	}
	srv := server.New(cfg.HTTP.Listen, log, reg)
	srv.Ready("capture", func() error {
		if !reader.Streaming() {
			return errors.New("not streaming from the replication slot")
		}
		return nil
	})

	log.Info().Str("version", cdcdVersion()).Str("bus", busName(cfg)).Str("slot", cfg.Postgres.Slot).Msg("cdcd starting")
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error {
		if err := reader.Run(gctx); err != nil {
			return err
		}
		return gctx.Err() // a clean stop of the reader stops the rest
	})
	err = g.Wait()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if cerr := pub.Close(cctx); cerr != nil {
		log.Warn().Err(cerr).Msg("closing the bus")
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info().Stringer("confirmed_lsn", reader.Confirmed()).Msg("cdcd stopped")
	return nil
}

// newBus builds the Kafka producer, or the in-process bus with one route per
// pipeline (everything to standard output when there are none).
func newBus(ctx context.Context, cfg *config.Config, tables []pgwal.Table, source cdc.SourceInfo, log zerolog.Logger, reg prometheus.Registerer) (cdc.Publisher, error) {
	if k := cfg.Kafka; k != nil {
		p, err := kafkabus.New(kafkabus.Config{
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
			Source:            source,
		}, log, reg)
		if err != nil {
			return nil, usageError(err)
		}
		return p, nil
	}
	env := config.Env{Log: log, Metrics: reg, Stdout: os.Stdout, Source: source}
	reg2 := components()
	var routes []cdc.Route
	for _, p := range cfg.Pipelines {
		sys := cfg.Systems[p.To]
		if sys == nil {
			continue // an inbound pipeline: applied by its own writer
		}
		sink, err := cfg.NewSink(reg2, p.To, env)
		if err != nil {
			return nil, usageError(fmt.Errorf("pipelines %s: %w", p.Name, err))
		}
		routes = append(routes, cdc.Route{Name: p.Name, System: p.To, Match: matchTable(p.From), Sink: sink})
	}
	if len(cfg.Pipelines) == 0 {
		sink := file.NewStdout(env)
		routes = append(routes, cdc.Route{Name: "stdout", System: "stdout", Sink: sink})
	}
	return cdc.NewLocalBus(cdc.LocalBusConfig{}, routes, log, reg), nil
}

// matchTable selects a pipeline's events by its from: a table (schema.table
// or table) or a system name for inbound events.
func matchTable(from string) func(*cdc.Event) bool {
	t, err := pgwal.ParseTable(from)
	if err != nil {
		return func(*cdc.Event) bool { return false }
	}
	return func(e *cdc.Event) bool {
		if e.Source != "" && e.Source != cdc.SourcePostgres {
			return e.Source == from
		}
		return e.Schema == t.Schema && e.Table == t.Name
	}
}

func newLogger(c config.Log) zerolog.Logger {
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil || c.Level == "" {
		level = zerolog.InfoLevel
	}
	var log zerolog.Logger
	if c.Format == "console" {
		log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.RFC3339})
	} else {
		log = zerolog.New(os.Stderr)
	}
	return log.Level(level).With().Timestamp().Logger()
}
