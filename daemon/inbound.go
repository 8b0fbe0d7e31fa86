package daemon

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/pgwal"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/conflict"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/internal/promshare"
	"github.com/cdcd-dev/cdcd/sinks/postgres"
	"github.com/cdcd-dev/cdcd/sources/imports"
	"github.com/cdcd-dev/cdcd/sources/webhook"
	"github.com/cdcd-dev/cdcd/store"
	"github.com/cdcd-dev/cdcd/syncapi"
	"github.com/cdcd-dev/cdcd/transform"
	"github.com/prometheus/client_golang/prometheus"
)

// inboundPipeline applies the changes a system reports through its
// webhooks to a local table, through the delivery engine (mapping,
// retries, dead letters).
func (d *Daemon) inboundPipeline(ctx context.Context, p *config.Pipeline) (pipeline, error) {
	bad := func(err error) (pipeline, error) {
		return pipeline{}, configError(fmt.Errorf("pipeline %s: %w", p.Name, err))
	}
	st, err := d.openStore(ctx)
	if err != nil {
		return pipeline{}, err
	}
	cfg, env := d.cfg, d.env
	m, err := transform.New(transform.SpecOf(p), transform.NewPostgres(d.lookups), env.Log)
	if err != nil {
		return bad(err)
	}
	in := postgres.Inbound{Object: p.Object, Fields: m.Reads(), Echoes: d.echoes}
	if in.Conflicts, err = d.conflicts(p); err != nil {
		return bad(err)
	}
	if d.reg.IsWriter(cfg.Systems[p.From].Type) {
		w, err := cfg.NewWriter(d.reg, p.From, env)
		if err != nil {
			return bad(err)
		}
		if f, ok := w.(syncapi.Fetcher); ok {
			in.Fetcher, in.Mapper = f, m
		}
		if l, ok := w.(imports.Lister); ok && canList(cfg.Systems[p.From].Config) {
			if d.imports == nil {
				d.imports = map[string]imports.Source{}
			}
			d.imports[p.Name] = imports.Source{System: p.From, Object: p.Object, Fields: m.Reads(), Lister: l}
		}
		pw, ok := w.(syncapi.Patcher)
		in.Conflicts.Patched = ok && pw.PatchesFields()
	}
	if wh, ok := webhook.Of(cfg.Systems[p.From]); ok {
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
	dead, err := d.deadLetters(p)
	if err != nil {
		return pipeline{}, err
	}
	dp, err := delivery.NewPipeline(deliveryConfig(p), m, w, delivery.Stores{DeadLetters: dead, Audit: st.Audit(), Tx: st.InTx}, env.Log, env.Metrics)
	if err != nil {
		return bad(err)
	}
	return pipeline{
		name: p.Name, system: p.To, inbound: true,
		from: pgwal.Table{Schema: p.From, Name: p.Object},
		sink: dp, delivery: dp,
	}, nil
}

// conflicts is how the inbound pipeline p decides changes made on both
// sides: its conflict: policy (the default without one) over the fields
// its map takes as they are.
func (d *Daemon) conflicts(p *config.Pipeline) (*postgres.Conflicts, error) {
	if d.detected == nil {
		vec, err := promshare.Register(d.metrics, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcd_conflicts_total", Help: "Conflicts detected, by pipeline and the rule that decided them (pending: none yet).",
		}, []string{"pipeline", "rule"}))
		if err != nil {
			return nil, err
		}
		d.detected = vec
	}
	c := &postgres.Conflicts{Pipeline: p.Name, Policy: p.Conflict.Policy(), Columns: map[string]string{}, Detected: d.detected}
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
	if d.policies == nil {
		d.policies = map[string]store.ConflictPolicy{}
	}
	d.policies[p.Name] = store.ConflictPolicy{Policy: c.Policy, LLM: c.LLM, Remind: remind}
	return c, nil
}

// remoteMoved is the outbound pipeline p's hand-over of a record its
// system changed since the last sync: when an inbound pipeline brings
// that system's changes of the object in, the record is read back from
// the system and compared there, as a change of its own, through intake
// (nil otherwise).
func remoteMoved(cfg *config.Config, p *config.Pipeline, intake webhook.Acceptor) func(context.Context, string, string, time.Time) error {
	inbound := slices.ContainsFunc(cfg.Pipelines, func(q *config.Pipeline) bool {
		return q.From == p.To && q.Object == p.Object && cfg.IsInbound(q)
	})
	if !inbound {
		return nil
	}
	system := p.To
	return func(ctx context.Context, object, id string, at time.Time) error {
		if intake == nil {
			return fmt.Errorf("no intake to hand the change of %s %s over to", system, id)
		}
		e := cdc.Event{Op: cdc.OpUpdate, Source: system, Schema: system, Table: object,
			Key:        cdc.Row{{Name: "id", Value: cdc.AppendJSONString(nil, id)}},
			CommitTime: at, Refetch: true, DeliveryID: fmt.Sprintf("moved/%s/%s/%d", object, id, at.UnixMilli())}
		return intake.Accept(ctx, system, []webhook.Change{{Event: e, Kind: "record.moved"}})
	}
}

// canList reports whether a system's config lets its writer list records
// (a list: section for http, a location for shopify).
func canList(c config.Validator) bool {
	l, ok := c.(config.Lister)
	return ok && l.Lists()
}
