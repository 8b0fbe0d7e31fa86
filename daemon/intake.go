package daemon

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/kafkabus"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/sources/inbox"
	"github.com/cdcd-dev/cdcd/sources/webhook"
)

// intake accepts changes from the systems: their webhooks, and the
// records an outbound pipeline found changed in its system.
type intake struct {
	// acceptor takes the changes; nil when nothing accepts any.
	acceptor webhook.Acceptor
	// publisher is, in Kafka mode, the bus's producer (roles all and
	// capture) or the sinks role's hand-over to the inbound topics.
	publisher *kafkabus.Producer
	// systems are those with a webhook: section, received where events
	// can be published: in-process, or by capture processes in Kafka mode.
	systems []webhook.System
	dedupe  webhook.Deduper
	inbox   *inbox.Inbox // in-process only
	// deployment is the slot: another cdcd on the database keeps its own
	// inbox rows and delivery ids.
	deployment string
}

// buildIntake makes the intake. In Kafka mode changes are accepted once
// the producer has them acknowledged on <prefix>.<system>.<entity>;
// in-process they are accepted into cdcd.inbox, which buildWebhooks pumps
// to a bus of the inbound pipelines.
func (d *Daemon) buildIntake(ctx context.Context) (intake, error) {
	in := intake{deployment: d.cfg.Postgres.Slot}
	if d.cfg.Kafka != nil && (d.role != RoleSinks || slices.ContainsFunc(d.cfg.Pipelines, d.cfg.IsInbound)) {
		p, err := kafkabus.New(kafkaConfig(d.cfg, d.env.Source), d.log, d.metrics)
		if err != nil {
			return in, configError(err)
		}
		in.publisher = p
	}
	if d.role == RoleSinks {
		if in.publisher != nil {
			in.acceptor = webhook.PublishAcceptor{Publisher: in.publisher}
		}
		return in, nil
	}
	systems, err := webhookSystems(d.cfg)
	if err != nil {
		return in, err
	}
	// Imports hand records to the intake too, for any inbound pipeline.
	if len(systems) == 0 && !slices.ContainsFunc(d.cfg.Pipelines, d.cfg.IsInbound) {
		return in, nil
	}
	in.systems = systems
	if _, err := d.openStore(ctx); err != nil {
		return in, err
	}
	names := make([]string, len(systems))
	for i, s := range systems {
		names[i] = s.Name
	}
	if d.cfg.Kafka != nil {
		if err := webhook.AdoptDeliveries(ctx, d.lookups, in.deployment, names); err != nil {
			return in, err
		}
		dd, err := webhook.NewPostgresDeduper(d.lookups, in.deployment, d.dedupeCache())
		if err != nil {
			return in, err
		}
		in.acceptor, in.dedupe = webhook.PublishAcceptor{Publisher: in.publisher}, dd
		return in, nil
	}
	ib, err := inbox.Open(ctx, d.lookups, inbox.Config{Deployment: in.deployment, Systems: names}, d.log, d.metrics)
	if err != nil {
		return in, err
	}
	in.inbox, in.acceptor, in.dedupe = ib, ib, d.dedupeCache()
	return in, nil
}

// dedupeCache holds the delivery ids accepted lately in memory, in front
// of cdcd.webhook_deliveries, for no longer than the table keeps them.
func (d *Daemon) dedupeCache() *webhook.MemoryDeduper {
	return webhook.NewMemoryDeduper(0, min(webhook.DefaultDedupeTTL, d.cfg.Retention.WebhookDeliveries))
}

// webhookSystems are the systems with a webhook: section, ready to mount.
func webhookSystems(cfg *config.Config) ([]webhook.System, error) {
	var systems []webhook.System
	for _, name := range slices.Sorted(maps.Keys(cfg.Systems)) {
		wh, ok := webhook.Of(cfg.Systems[name])
		if !ok {
			continue
		}
		s, err := wh.System(name)
		if err != nil {
			return nil, configError(err)
		}
		systems = append(systems, s)
	}
	return systems, nil
}

// buildWebhooks mounts POST /webhooks/{system} on the intake and, in
// process, pumps the inbox to a bus of the inbound pipelines.
func (d *Daemon) buildWebhooks(pls []pipeline, in intake) error {
	if in.inbox != nil {
		bus := cdc.NewLocalBus(cdc.LocalBusConfig{OnOrigin: d.echoes.OnOrigin()}, routes(pls, true), d.log, d.metrics)
		ib := in.inbox
		d.runs(func(ctx context.Context) error { return ib.Run(ctx, bus) })
		// Closers run last to first: the inbox stops accepting, then the
		// bus drains and closes the inbound sinks.
		d.closes(bus.Close)
		d.closes(func(context.Context) error { ib.Close(); return nil })
	}
	if len(in.systems) == 0 {
		return nil // imports only
	}
	h, err := webhook.NewHandler(webhook.HandlerConfig{}, in.systems, in.acceptor, in.dedupe, d.log, d.metrics)
	if err != nil {
		return err
	}
	d.server.Handle("POST /webhooks/{system}", h)
	d.runs(func(ctx context.Context) error { d.pruneDeliveries(ctx, in.deployment); return nil })
	return nil
}

// pruneDeliveries forgets the deployment's webhook delivery ids older
// than retention.webhook_deliveries, every tenth of it, until ctx ends.
func (d *Daemon) pruneDeliveries(ctx context.Context, deployment string) {
	keep := d.cfg.Retention.WebhookDeliveries
	t := time.NewTicker(config.PruneEvery(keep))
	defer t.Stop()
	for {
		n, err := webhook.PruneDeliveries(ctx, d.lookups, deployment, keep)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			d.log.Warn().Err(err).Msg("prune webhook delivery ids")
		case n > 0:
			d.log.Info().Int64("deleted", n).Msg("old webhook delivery ids pruned")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
