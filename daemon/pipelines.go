package daemon

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
	"github.com/cdcd-dev/cdcd/syncstate"
	"github.com/cdcd-dev/cdcd/transform"
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

// buildPipelines makes the sink of every pipeline. Vendor writers need
// cdcd's state store, which is opened (and migrated) here. intake is where
// outbound pipelines hand over records found changed in their system (nil
// when nothing accepts changes from the systems).
func (d *Daemon) buildPipelines(ctx context.Context, intake webhook.Acceptor) ([]pipeline, error) {
	echoes, err := echo.NewCounter(d.metrics)
	if err != nil {
		return nil, err
	}
	d.echoes = echoes
	var pls []pipeline
	for _, p := range d.cfg.Pipelines {
		if d.cfg.IsInbound(p) {
			pl, err := d.inboundPipeline(ctx, p)
			if err != nil {
				return nil, err
			}
			pls = append(pls, pl)
			continue
		}
		from, err := pgwal.ParseTable(p.From)
		if err != nil {
			return nil, configError(fmt.Errorf("pipeline %s: %w", p.Name, err))
		}
		pl := pipeline{name: p.Name, system: p.To, from: from}
		if d.reg.IsWriter(d.cfg.Systems[p.To].Type) {
			pl.delivery, err = d.deliveryPipeline(ctx, p, intake)
			pl.sink = pl.delivery
		} else {
			pl.sink, err = d.selectingSink(ctx, p)
		}
		if err != nil {
			return nil, err
		}
		pls = append(pls, pl)
	}
	d.pipelines = len(pls)
	return pls, nil
}

// selectingSink is the sink of a system that writes changes as they are
// (file, stdout), given only what pipeline p selects: its ops and filter
// (lookups included) and its columns.
func (d *Daemon) selectingSink(ctx context.Context, p *config.Pipeline) (cdc.Sink, error) {
	var lookups transform.LookupSource
	if len(p.Lookups) > 0 {
		if _, err := d.openStore(ctx); err != nil {
			return nil, err
		}
		lookups = transform.NewPostgres(d.lookups)
	}
	m, err := transform.New(transform.SpecOf(p), lookups, d.log)
	if err != nil {
		return nil, configError(fmt.Errorf("pipeline %s: %w", p.Name, err))
	}
	sink, err := d.cfg.NewSink(d.reg, p.To, d.env)
	if err != nil {
		return nil, err
	}
	return transform.Select(sink, m, d.log.With().Str("pipeline", p.Name).Logger()), nil
}

// deadLetters is where a pipeline's undeliverable records go: cdcd's
// store and, in Kafka mode, also <prefix>.dlq.<pipeline>, where they are
// published from the store once stored (kafkabus.DeadLetterTopic).
func (d *Daemon) deadLetters(p *config.Pipeline) (syncstate.DeadLetters, error) {
	if d.cfg.Kafka == nil {
		return d.store.DeadLetters(), nil
	}
	dead := d.store.DeadLettersToTopic()
	t, err := kafkabus.NewDeadLetterTopic(dead, kafkaConfig(d.cfg, d.env.Source), p.Name, d.log, d.metrics)
	if err != nil {
		return nil, configError(fmt.Errorf("pipeline %s: %w", p.Name, err))
	}
	d.runs(t.Run)
	d.release = append(d.release, func() { _ = t.Close(context.Background()) })
	return dead, nil
}

func (d *Daemon) deliveryPipeline(ctx context.Context, p *config.Pipeline, intake webhook.Acceptor) (*delivery.Pipeline, error) {
	st, err := d.openStore(ctx)
	if err != nil {
		return nil, err
	}
	w, err := d.cfg.NewWriter(d.reg, p.To, d.env)
	if err != nil {
		return nil, configError(fmt.Errorf("pipeline %s: %w", p.Name, err))
	}
	m, err := transform.New(transform.SpecOf(p), transform.NewPostgres(d.lookups), d.log)
	if err != nil {
		return nil, configError(fmt.Errorf("pipeline %s: %w", p.Name, err))
	}
	dead, err := d.deadLetters(p)
	if err != nil {
		return nil, err
	}
	// Every link written is also remembered as a recent write, so that
	// the system reporting it back is known as an echo: when a pipeline
	// brings that system's changes in. Nothing reads the recent writes of
	// another system.
	var links syncstate.Links = st.Links()
	if bringsIn(d.cfg, p.To) {
		links = echo.Remember(links, st.RecentWrites())
	}
	if p.Link != nil && p.Link.Column != "" {
		links = st.LinkBack(links, p.Link.Column)
	}
	dc := deliveryConfig(p)
	dc.RemoteMoved = remoteMoved(d.cfg, p, intake)
	dp, err := delivery.NewPipeline(dc, m, w, delivery.Stores{Links: links, DeadLetters: dead, Audit: st.Audit(), Pending: st.PendingCreates(), Tx: st.InTx}, d.log, d.metrics)
	if err != nil {
		return nil, configError(fmt.Errorf("pipeline %s: %w", p.Name, err))
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

// route sends a pipeline's events to its sink on an in-process bus.
func route(p pipeline) cdc.Route {
	from := p.from
	return cdc.Route{Name: p.name, System: p.system, Sink: p.sink,
		Match: func(e *cdc.Event) bool { return e.Schema == from.Schema && e.Table == from.Name }}
}

// routes are the in-process routes of the pipelines that are inbound (or
// not).
func routes(pls []pipeline, inbound bool) []cdc.Route {
	var rs []cdc.Route
	for _, p := range pls {
		if p.inbound == inbound {
			rs = append(rs, route(p))
		}
	}
	return rs
}

// bringsIn reports whether a pipeline of cfg applies the changes of
// system to a table: only such a pipeline reads the recent writes to the
// system's records (echo suppression).
func bringsIn(cfg *config.Config, system string) bool {
	for _, p := range cfg.Pipelines {
		if cfg.IsInbound(p) && p.From == system {
			return true
		}
	}
	return false
}
