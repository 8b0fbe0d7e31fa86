package main

import (
	"context"
	"fmt"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/kafkabus"
	"github.com/cdcd-dev/cdcd/cdc/pgwal"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/echo"
	"github.com/cdcd-dev/cdcd/sources/webhook"
	"github.com/cdcd-dev/cdcd/store"
	"github.com/cdcd-dev/cdcd/syncstate"
	"github.com/cdcd-dev/cdcd/transform"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// pipeline is an outbound pipeline ready to deliver: the events of one
// table to one system. delivery is set for vendor writers, which run
// through the delivery engine (mapping, retries, links, dead letters).
//
// An inbound pipeline applies a system's changes to a local table: from is
// then the system and its entity, as inbound events name them (Schema and
// Table), and system is the table.
type pipeline struct {
	name, system string
	from         pgwal.Table
	sink         cdc.Sink
	delivery     *delivery.Pipeline
	inbound      bool
}

// outbound holds what the outbound pipelines share: cdcd's state store and
// the pool used for lookups. Both are nil when no pipeline needs them.
type outbound struct {
	pipelines []pipeline
	store     *store.Store
	lookups   *pgxpool.Pool
	dlqTopics []*kafkabus.DeadLetterTopic
	// recent holds cdcd's recent writes to each system, echoes counts the
	// echoes of them that were suppressed.
	recent *echo.Recent
	echoes *echo.Counter
	// detected counts conflicts, by pipeline and rule; policies are the
	// inbound pipelines' conflict policies, by pipeline.
	detected *prometheus.CounterVec
	policies map[string]store.ConflictPolicy
	// intake accepts changes from the systems (webhooks, and records an
	// outbound pipeline found changed in the system); set by intake.
	intake webhook.Acceptor
}

func (o *outbound) close() {
	for _, d := range o.dlqTopics {
		_ = d.Close(context.Background())
	}
	if o.store != nil {
		o.store.Close()
	}
	if o.lookups != nil {
		o.lookups.Close()
	}
}

// buildOutbound makes the sink of every outbound pipeline (those whose
// from: is a table). Vendor writers need cdcd's state store, which is
// opened (and migrated) here.
func buildOutbound(ctx context.Context, cfg *config.Config, env config.Env) (*outbound, error) {
	reg := components()
	echoes, err := echo.NewCounter(env.Metrics)
	if err != nil {
		return nil, err
	}
	o := &outbound{recent: echo.NewRecent(0, 0), echoes: echoes}
	for _, p := range cfg.Pipelines {
		if cfg.IsInbound(p) {
			pl, err := o.inboundPipeline(ctx, cfg, reg, p, env)
			if err != nil {
				o.close()
				return nil, err
			}
			o.pipelines = append(o.pipelines, pl)
			continue
		}
		from, err := pgwal.ParseTable(p.From)
		if err != nil {
			o.close()
			return nil, usageError(fmt.Errorf("pipeline %s: %w", p.Name, err))
		}
		pl := pipeline{name: p.Name, system: p.To, from: from}
		if reg.IsWriter(cfg.Systems[p.To].Type) {
			pl.delivery, err = o.deliveryPipeline(ctx, cfg, reg, p, env)
			pl.sink = pl.delivery
		} else {
			pl.sink, err = o.selectingSink(ctx, cfg, reg, p, env)
		}
		if err != nil {
			o.close()
			return nil, err
		}
		o.pipelines = append(o.pipelines, pl)
	}
	return o, nil
}

// open opens cdcd's state store (migrating it) and the pool for lookups,
// once.
func (o *outbound) open(ctx context.Context, cfg *config.Config, env config.Env) error {
	if o.store != nil {
		return nil
	}
	st, err := store.Open(ctx, cfg.Postgres.URL, env.Log)
	if err != nil {
		return fmt.Errorf("open cdcd's state in postgres: %w", err)
	}
	o.store = st
	pool, err := pgxpool.New(ctx, cfg.Postgres.URL) // connects lazily
	if err != nil {
		return usageError(fmt.Errorf("postgres.url: %w", err))
	}
	o.lookups = pool
	return nil
}

// selectingSink is the sink of a system that writes changes as they are
// (file, stdout), given only what pipeline p selects: its ops and filter
// (lookups included) and its columns.
func (o *outbound) selectingSink(ctx context.Context, cfg *config.Config, reg *config.Registry, p *config.Pipeline, env config.Env) (cdc.Sink, error) {
	var lookups transform.LookupSource
	if len(p.Lookups) > 0 {
		if err := o.open(ctx, cfg, env); err != nil {
			return nil, err
		}
		lookups = transform.NewPostgres(o.lookups)
	}
	m, err := transform.New(transform.SpecOf(p), lookups, env.Log)
	if err != nil {
		return nil, usageError(fmt.Errorf("pipeline %s: %w", p.Name, err))
	}
	sink, err := cfg.NewSink(reg, p.To, env)
	if err != nil {
		return nil, err
	}
	return transform.Select(sink, m, env.Log.With().Str("pipeline", p.Name).Logger()), nil
}

// deadLetters is where a pipeline's undeliverable records go: cdcd's
// store and, in Kafka mode, also <prefix>.dlq.<pipeline>.
func (o *outbound) deadLetters(cfg *config.Config, p *config.Pipeline, env config.Env) (syncstate.DeadLetters, error) {
	var dead syncstate.DeadLetters = o.store.DeadLetters()
	if cfg.Kafka == nil {
		return dead, nil
	}
	d, err := kafkabus.NewDeadLetterTopic(dead, kafkaConfig(cfg, env.Source), p.Name, env.Log)
	if err != nil {
		return nil, usageError(fmt.Errorf("pipeline %s: %w", p.Name, err))
	}
	o.dlqTopics = append(o.dlqTopics, d)
	return d, nil
}

func (o *outbound) deliveryPipeline(ctx context.Context, cfg *config.Config, reg *config.Registry, p *config.Pipeline, env config.Env) (*delivery.Pipeline, error) {
	if err := o.open(ctx, cfg, env); err != nil {
		return nil, err
	}
	w, err := cfg.NewWriter(reg, p.To, env)
	if err != nil {
		return nil, usageError(fmt.Errorf("pipeline %s: %w", p.Name, err))
	}
	m, err := transform.New(transform.SpecOf(p), transform.NewPostgres(o.lookups), env.Log)
	if err != nil {
		return nil, usageError(fmt.Errorf("pipeline %s: %w", p.Name, err))
	}
	dead, err := o.deadLetters(cfg, p, env)
	if err != nil {
		return nil, err
	}
	// Every link written is also remembered as a recent write, so that
	// the system reporting it back is known as an echo.
	links := echo.Remember(o.store.Links(), o.recent)
	if p.Link != nil && p.Link.Column != "" {
		links = o.store.LinkBack(links, p.Link.Column)
	}
	dc := deliveryConfig(p)
	dc.RemoteMoved = o.remoteMoved(cfg, p)
	dp, err := delivery.NewPipeline(dc, m, w, delivery.Stores{Links: links, DeadLetters: dead, Audit: o.store.Audit(), Pending: o.store.PendingCreates()}, env.Log, env.Metrics)
	if err != nil {
		return nil, usageError(fmt.Errorf("pipeline %s: %w", p.Name, err))
	}
	return dp, nil
}

// deliveryConfig is how the delivery engine runs pipeline p.
func deliveryConfig(p *config.Pipeline) delivery.PipelineConfig {
	return delivery.PipelineConfig{
		Name:        p.Name,
		System:      p.To,
		Object:      p.Object,
		Coalesce:    p.Coalesce,
		Concurrency: p.Concurrency,
		MaxAttempts: p.MaxAttempts,
		MinBackoff:  p.Backoff.Min,
		MaxBackoff:  p.Backoff.Max,
		MaxAge:      p.MaxAge,
	}
}
