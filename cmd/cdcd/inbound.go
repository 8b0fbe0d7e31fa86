package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/pgwal"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/conflict"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/internal/promshare"
	"github.com/cdcd-dev/cdcd/sinks/postgres"
	"github.com/cdcd-dev/cdcd/sources/inbox"
	"github.com/cdcd-dev/cdcd/sources/webhook"
	"github.com/cdcd-dev/cdcd/store"
	"github.com/cdcd-dev/cdcd/transform"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
)

// deliveriesKept is how long webhook delivery ids are remembered: far
// longer than any vendor retries a delivery.
const deliveriesKept = 7 * 24 * time.Hour

// inboundPipeline applies the changes a system reports through its
// webhooks to a local table, through the delivery engine (mapping,
// retries, dead letters).
func (o *outbound) inboundPipeline(ctx context.Context, cfg *config.Config, reg *config.Registry, p *config.Pipeline, env config.Env) (pipeline, error) {
	bad := func(err error) (pipeline, error) {
		return pipeline{}, usageError(fmt.Errorf("pipeline %s: %w", p.Name, err))
	}
	if err := o.open(ctx, cfg, env); err != nil {
		return pipeline{}, err
	}
	m, err := transform.New(transform.SpecOf(p), transform.NewPostgres(o.lookups), env.Log)
	if err != nil {
		return bad(err)
	}
	in := postgres.Inbound{Object: p.Object, Fields: m.Reads(), Recent: o.recent, Echoes: o.echoes}
	if in.Conflicts, err = o.conflicts(p, env); err != nil {
		return bad(err)
	}
	if reg.IsWriter(cfg.Systems[p.From].Type) {
		w, err := cfg.NewWriter(reg, p.From, env)
		if err != nil {
			return bad(err)
		}
		if f, ok := w.(delivery.Fetcher); ok {
			in.Fetcher, in.Mapper = f, m
		}
		pw, ok := w.(delivery.Patcher)
		in.Conflicts.Patched = ok && pw.PatchesFields()
	}
	if wh, ok := cfg.Systems[p.From].Webhook.(*webhook.Config); ok {
		in.OwnWrite = wh.IsOwnWrite
	}
	w, err := postgres.New(p.From, &postgres.Config{
		URL:              cfg.Postgres.URL,
		Table:            p.To,
		Match:            p.Match,
		OnDelete:         p.OnDelete,
		SoftDeleteColumn: p.SoftDeleteColumn,
		TombstoneTTL:     p.TombstoneTTL,
	}, in, env)
	if err != nil {
		return bad(err)
	}
	dead, err := o.deadLetters(cfg, p, env)
	if err != nil {
		return pipeline{}, err
	}
	dp, err := delivery.NewPipeline(deliveryConfig(p), m, w, delivery.Stores{DeadLetters: dead, Audit: o.store.Audit()}, env.Log, env.Metrics)
	if err != nil {
		return bad(err)
	}
	return pipeline{
		name: p.Name, system: p.To, inbound: true,
		from: pgwal.Table{Schema: p.From, Name: p.Object},
		sink: dp, delivery: dp,
	}, nil
}

// webhookSystems are the systems with a webhook: section, ready to mount.
func webhookSystems(cfg *config.Config) ([]webhook.System, error) {
	var systems []webhook.System
	for _, name := range slices.Sorted(maps.Keys(cfg.Systems)) {
		wh, ok := cfg.Systems[name].Webhook.(*webhook.Config)
		if !ok {
			continue
		}
		s, err := wh.System(name)
		if err != nil {
			return nil, usageError(err)
		}
		systems = append(systems, s)
	}
	return systems, nil
}

// intake mounts POST /webhooks/{system} when a system has a webhook:
// section. In Kafka mode deliveries are accepted once the producer pub has
// them acknowledged on <prefix>.<system>.<entity>; in-process they are
// accepted into cdcd.inbox, which is pumped to a bus of the inbound
// pipelines (started on g). It returns what to close after g ends, in
// order.
func intake(ctx context.Context, g *errgroup.Group, gctx context.Context, cfg *config.Config, o *outbound, pub cdc.Publisher,
	mount func(string, http.Handler), env config.Env) ([]func(context.Context) error, error) {
	systems, err := webhookSystems(cfg)
	if err != nil || len(systems) == 0 {
		return nil, err
	}
	if err := o.open(ctx, cfg, env); err != nil {
		return nil, err
	}
	var (
		acc     webhook.Acceptor
		dedupe  webhook.Deduper
		closers []func(context.Context) error
	)
	// The slot names the deployment: another cdcd on the database keeps
	// its own inbox rows and delivery ids.
	deployment := cfg.Postgres.Slot
	names := make([]string, len(systems))
	for i, s := range systems {
		names[i] = s.Name
	}
	if cfg.Kafka != nil {
		if err := webhook.AdoptDeliveries(ctx, o.lookups, deployment, names); err != nil {
			return nil, err
		}
		d, err := webhook.NewPostgresDeduper(o.lookups, deployment, nil)
		if err != nil {
			return nil, err
		}
		acc, dedupe = webhook.PublishAcceptor{Publisher: pub}, d
	} else {
		ib, err := inbox.Open(ctx, o.lookups, inbox.Config{Deployment: deployment, Systems: names}, env.Log, env.Metrics)
		if err != nil {
			return nil, err
		}
		var routes []cdc.Route
		for _, p := range o.pipelines {
			if p.inbound {
				routes = append(routes, route(p))
			}
		}
		bus := cdc.NewLocalBus(cdc.LocalBusConfig{OnOrigin: o.echoes.OnOrigin()}, routes, env.Log, env.Metrics)
		g.Go(func() error { return ib.Run(gctx, bus) })
		// Closers run last to first: the inbox stops accepting, then the
		// bus drains and closes the inbound sinks.
		closers = append(closers, bus.Close, func(context.Context) error { ib.Close(); return nil })
		acc, dedupe = ib, webhook.NewMemoryDeduper(0, 0)
	}
	o.intake = acc
	h, err := webhook.NewHandler(webhook.HandlerConfig{}, systems, acc, dedupe, env.Log, env.Metrics)
	if err != nil {
		return nil, err
	}
	mount("POST /webhooks/{system}", h)
	g.Go(func() error { return pruneDeliveries(gctx, o, deployment, env) })
	return closers, nil
}

// route sends a pipeline's events to its sink on an in-process bus.
func route(p pipeline) cdc.Route {
	from := p.from
	return cdc.Route{Name: p.name, System: p.system, Sink: p.sink,
		Match: func(e *cdc.Event) bool { return e.Schema == from.Schema && e.Table == from.Name }}
}

// pruneDeliveries forgets the deployment's old webhook delivery ids,
// hourly, until ctx ends.
func pruneDeliveries(ctx context.Context, o *outbound, deployment string, env config.Env) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := webhook.PruneDeliveries(ctx, o.lookups, deployment, deliveriesKept)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			env.Log.Warn().Err(err).Msg("prune webhook delivery ids")
		case n > 0:
			env.Log.Info().Int64("deleted", n).Msg("old webhook delivery ids pruned")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// conflicts is how the inbound pipeline p decides changes made on both
// sides: its conflict: policy (the default without one) over the fields
// its map takes as they are.
func (o *outbound) conflicts(p *config.Pipeline, env config.Env) (*postgres.Conflicts, error) {
	if o.detected == nil {
		vec, err := promshare.Register(env.Metrics, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcd_conflicts_total", Help: "Conflicts detected, by pipeline and the rule that decided them (pending: none yet).",
		}, []string{"pipeline", "rule"}))
		if err != nil {
			return nil, err
		}
		o.detected = vec
	}
	c := &postgres.Conflicts{Pipeline: p.Name, Policy: conflict.PolicyOf(p.Conflict), Columns: map[string]string{}, Detected: o.detected}
	for col, src := range p.Map {
		if src.Column != "" {
			c.Columns[src.Column] = col
		}
	}
	if c.Policy.UsesLLM() {
		c.LLM = conflict.NewLLM(p.Conflict.LLM, nil)
	}
	remind := config.DefaultConflictRemind
	if p.Conflict != nil {
		remind = p.Conflict.Remind
	}
	if o.policies == nil {
		o.policies = map[string]store.ConflictPolicy{}
	}
	o.policies[p.Name] = store.ConflictPolicy{Policy: c.Policy, LLM: c.LLM, Remind: remind}
	return c, nil
}

// remoteMoved is the outbound pipeline p's hand-over of a record its
// system changed since the last sync: when an inbound pipeline brings
// that system's changes of the object in, the record is read back from
// the system and compared there, as a change of its own (nil otherwise).
func (o *outbound) remoteMoved(cfg *config.Config, p *config.Pipeline) func(context.Context, string, string, time.Time) error {
	inbound := slices.ContainsFunc(cfg.Pipelines, func(q *config.Pipeline) bool {
		return q.From == p.To && q.Object == p.Object && cfg.IsInbound(q)
	})
	if !inbound {
		return nil
	}
	system := p.To
	return func(ctx context.Context, object, id string, at time.Time) error {
		if o.intake == nil {
			return fmt.Errorf("no intake to hand the change of %s %s over to", system, id)
		}
		e := cdc.Event{Op: cdc.OpUpdate, Source: system, Schema: system, Table: object,
			Key:        cdc.Row{{Name: "id", Value: cdc.AppendJSONString(nil, id)}},
			CommitTime: at, Refetch: true, DeliveryID: fmt.Sprintf("moved/%s/%s/%d", object, id, at.UnixMilli())}
		return o.intake.Accept(ctx, system, []webhook.Change{{Event: e, Kind: "record.moved"}})
	}
}
