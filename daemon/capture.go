package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cdcd-dev/cdcd/backfill"
	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/kafkabus"
	"github.com/cdcd-dev/cdcd/cdc/pgwal"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/sinks/file"
)

// buildCapture makes the publishing side of the roles all and capture:
// the bus (the Kafka producer, or the in-process bus of the outbound
// pipelines), the webhook intake, and the replication reader, which
// starts once what it hands changes to is in place.
func (d *Daemon) buildCapture(ctx context.Context, pls []pipeline, in intake) error {
	var pub cdc.Publisher
	if in.publisher != nil {
		pub = in.publisher
	} else {
		bus := d.localBus(pls)
		d.forgets, pub = bus.Forgets, bus
	}
	d.closes(pub.Close) // closes the in-process sinks too
	if len(in.systems) > 0 || in.inbox != nil {
		if err := d.buildWebhooks(pls, in); err != nil {
			return err
		}
	}
	d.merger = backfill.NewMerger()
	reader, err := newReader(d.cfg, pub, d)
	if err != nil {
		return err
	}
	d.reader = reader
	d.ready("capture", func() error {
		if !reader.Streaming() {
			return errors.New("not streaming from the replication slot")
		}
		return nil
	})
	d.runs(func(ctx context.Context) error {
		if err := reader.Run(ctx); err != nil {
			return err
		}
		return ctx.Err() // a clean stop of the reader stops the rest
	})
	return nil
}

// localBus is the in-process bus with one route per outbound pipeline
// (every change to standard output when there is no pipeline at all).
func (d *Daemon) localBus(pls []pipeline) *cdc.LocalBus {
	rs := routes(pls, false)
	if len(d.cfg.Pipelines) == 0 {
		rs = append(rs, cdc.Route{Name: "stdout", System: "stdout", Sink: file.NewStdout(d.env)})
	}
	return cdc.NewLocalBus(cdc.LocalBusConfig{OnOrigin: d.echoes.OnOrigin()}, rs, d.log, d.metrics)
}

func newReader(cfg *config.Config, pub cdc.Publisher, d *Daemon) (*pgwal.Reader, error) {
	tables := make([]pgwal.Table, 0, len(cfg.Postgres.Tables))
	for _, t := range cfg.Postgres.Tables {
		tt, err := pgwal.ParseTable(t)
		if err != nil {
			return nil, configError(err)
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
		Snapshots:      d.merger,
	}, pub, d.log, d.metrics)
	if err != nil {
		return nil, configError(err)
	}
	return reader, nil
}

// buildConsumers makes, in Kafka mode, one consumer group per pipeline,
// reading its topic into its sink.
func (d *Daemon) buildConsumers(pls []pipeline) error {
	if d.role == RoleCapture || d.cfg.Kafka == nil {
		return nil
	}
	k := d.cfg.Kafka
	for _, p := range pls {
		c, err := kafkabus.NewConsumer(kafkabus.ConsumerConfig{
			Brokers:  k.Brokers,
			Group:    k.TopicPrefix + "." + p.name,
			Topics:   []string{kafkabus.TopicName(k.TopicPrefix, p.from.Schema, p.from.Name)},
			System:   p.system,
			Pipeline: p.name,
			OnOrigin: d.echoes.OnOrigin(),
			ClientID: k.ClientID,
			// how soon a silent worker's partitions move, and added ones
			// are read: docs/config.md
			SessionTimeout:   k.Group.SessionTimeout,
			Heartbeat:        k.Group.Heartbeat,
			PartitionWatch:   k.Group.PartitionWatch,
			RebalanceTimeout: k.Group.RebalanceTimeout,
			DrainTimeout:     k.Group.DrainTimeout,
		}, p.sink, d.log, d.metrics)
		if err != nil {
			return configError(fmt.Errorf("pipeline %s: %w", p.name, err))
		}
		d.runs(c.Run)
		d.closes(p.sink.Close)
	}
	return nil
}

// kafkaConfig is the bus's Kafka configuration.
func kafkaConfig(cfg *config.Config, source cdc.SourceInfo) kafkabus.Config {
	k := cfg.Kafka
	// The config's defaults are filled in, so a zero linger was asked for:
	// send at once. The bus (and kafka-go's writer) would take zero for
	// its default; a microsecond sends a batch as soon as it has a message.
	linger := k.Batch.Linger
	if linger == 0 {
		linger = time.Microsecond
	}
	return kafkabus.Config{
		Brokers:           k.Brokers,
		TopicPrefix:       k.TopicPrefix,
		ClientID:          k.ClientID,
		CreateTopics:      k.Topics.Create,
		Partitions:        k.Topics.Partitions,
		ReplicationFactor: k.Topics.ReplicationFactor,
		BatchSize:         k.Batch.Size,
		BatchBytes:        k.Batch.Bytes,
		Linger:            linger,
		BufferEvents:      k.Buffer.Events,
		BufferBytes:       k.Buffer.Bytes,
		Compression:       k.Compression,
		Format:            k.Format,
		NoTombstones:      !k.Tombstones,
		Schemas:           k.Schemas,
		Source:            source,
	}
}

// buildWorkers starts what the pipelines run beside their writes: the
// replays of dead letters, the conflicts' schedule, the audit retention.
func (d *Daemon) buildWorkers(pls []pipeline) {
	for _, p := range pls {
		if p.delivery != nil {
			d.ready("pipeline "+p.name, p.delivery.Ready)
			d.runs(func(ctx context.Context) error { return p.delivery.RunReplays(ctx, replayEvery) })
		}
	}
	if d.store == nil {
		return
	}
	if len(d.policies) > 0 {
		d.runs(func(ctx context.Context) error { return d.store.RunConflictSchedule(ctx, conflictEvery, d.policies) })
	}
	keep := d.cfg.Retention
	for _, r := range []struct {
		what  string
		keep  time.Duration
		prune func(context.Context, time.Duration) (int64, error)
	}{
		{"recent writes", keep.RecentWrites, d.store.PruneRecentWrites},
		{"deleted links", keep.DeletedLinks, d.store.PruneDeletedLinks},
		{"resolved conflicts", keep.Conflicts, d.store.PruneConflicts},
		{"finished jobs", keep.Jobs, d.store.PruneJobs},
	} {
		if r.keep > 0 {
			d.runs(func(ctx context.Context) error {
				return d.store.RunPruning(ctx, r.what, r.keep, config.PruneEvery(r.keep), r.prune)
			})
		}
	}
	if keep.Audit > 0 {
		d.runs(func(ctx context.Context) error {
			return d.store.RunRetention(ctx, keep.Audit, config.PruneEvery(keep.Audit))
		})
	}
}
