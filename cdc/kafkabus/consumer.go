package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/internal/promshare"
)

// ConsumerConfig says what one consumer group reads and where it delivers.
type ConsumerConfig struct {
	Brokers []string
	// Group is the consumer group id: one group per pipeline, so a slow or
	// failing sink never holds back another pipeline.
	Group  string
	Topics []string
	// System is the sink's system: events whose origin is this system are
	// skipped (acknowledged without delivery), since that is where they
	// came from.
	System string
	// Pipeline is the pipeline the group delivers for: an event naming
	// other pipelines (a backfill's rows, HeaderPipelines) is skipped.
	Pipeline string
	// OnOrigin, when set, is called with System for each event skipped
	// because it came from there.
	OnOrigin func(system string)
	// MaxBatch bounds the events given to one Sink.Write. A batch is
	// what was fetched while the sink wrote the one before: it never
	// waits to be filled.
	MaxBatch int
	// ClientID names this process to the brokers; the group coordinator
	// starts member ids with it. Default "cdcd".
	ClientID string
	// SessionTimeout is how long the group coordinator waits for a
	// heartbeat before it gives a silent member's partitions to the others
	// (a worker killed with SIGKILL, a lost network). Default 6s, the
	// smallest brokers accept by default (group.min.session.timeout.ms).
	// Heartbeats run on their own goroutine, so a slow sink does not
	// count as silence. A worker that stops cleanly leaves its group at
	// once and needs no timeout.
	SessionTimeout time.Duration
	// Heartbeat is how often a member tells the coordinator it is alive;
	// it is also how soon the others learn of a rebalance. Default 1s.
	Heartbeat time.Duration
	// PartitionWatch is how often a member checks its topics for added
	// partitions, which start a rebalance that assigns them, and for
	// topics created or deleted, after which it joins the group again
	// with the topics that exist. Default 5s.
	PartitionWatch time.Duration
	// RebalanceTimeout is how long the group coordinator waits for every
	// member to rejoin a rebalance. A member rejoins once the Writes it has
	// in flight are done and their offsets committed, so that no partition
	// moves while its messages are being written; it cancels Writes still
	// running 5s before this timeout (a member that does not rejoin in time
	// is dropped, and its uncommitted messages come again elsewhere).
	// Default 30s.
	RebalanceTimeout time.Duration
	// DrainTimeout is how long, at a stop, the Writes in flight have to
	// finish (and be committed) before they are cancelled; the member
	// leaves its group after that. Default 3s.
	DrainTimeout time.Duration
}

// Consumer group timing defaults (ConsumerConfig).
const (
	defaultSessionTimeout = 6 * time.Second
	defaultHeartbeat      = time.Second
	defaultPartitionWatch = 5 * time.Second
	// commitBudget is what a member keeps of the rebalance timeout to
	// commit and rejoin after its Writes.
	commitBudget = 5 * time.Second
)

// Defaults and bounds of ConsumerConfig.RebalanceTimeout and DrainTimeout.
const (
	DefaultRebalanceTimeout = 30 * time.Second
	DefaultDrainTimeout     = 3 * time.Second
	// MinRebalanceTimeout: a RebalanceTimeout must be longer.
	MinRebalanceTimeout = 2 * commitBudget
)

// Consumer feeds one consumer group's messages to a cdc.Sink and commits
// offsets only after the sink acknowledged them (Write returned nil). A
// crash between delivery and commit re-delivers, so sinks must be
// idempotent; nothing is committed that was not delivered. Messages of a
// partition are delivered in offset order, which keeps per-key order.
//
// A partition moves to another member of the group (a rebalance, or a
// clean stop) only after its owner finished or abandoned every Write of
// it and committed what they delivered, so members that join and leave
// cleanly deliver each message once; see the package documentation.
type Consumer struct {
	cfg  ConsumerConfig
	sink cdc.Sink
	log  zerolog.Logger
	m    *consumerMetrics
}

// NewConsumer validates cfg; it does not connect.
func NewConsumer(cfg ConsumerConfig, sink cdc.Sink, log zerolog.Logger, reg prometheus.Registerer) (*Consumer, error) {
	if len(cfg.Brokers) == 0 || cfg.Group == "" || len(cfg.Topics) == 0 {
		return nil, errors.New("kafkabus: consumer needs brokers, a group and topics")
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 500
	}
	cfg.ClientID = orDefault(cfg.ClientID, defaultClientID)
	cfg.SessionTimeout = orDefault(cfg.SessionTimeout, defaultSessionTimeout)
	cfg.Heartbeat = orDefault(cfg.Heartbeat, defaultHeartbeat)
	cfg.PartitionWatch = orDefault(cfg.PartitionWatch, defaultPartitionWatch)
	cfg.RebalanceTimeout = orDefault(cfg.RebalanceTimeout, DefaultRebalanceTimeout)
	cfg.DrainTimeout = orDefault(cfg.DrainTimeout, DefaultDrainTimeout)
	if cfg.Heartbeat >= cfg.SessionTimeout {
		return nil, fmt.Errorf("kafkabus: heartbeat %v must be shorter than the session timeout %v", cfg.Heartbeat, cfg.SessionTimeout)
	}
	if cfg.RebalanceTimeout <= MinRebalanceTimeout {
		return nil, fmt.Errorf("kafkabus: rebalance timeout %v must be longer than %v", cfg.RebalanceTimeout, MinRebalanceTimeout)
	}
	m, err := newConsumerMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Consumer{
		cfg: cfg, sink: sink, m: m,
		log: log.With().Str("component", "kafkabus").Str("group", cfg.Group).Logger(),
	}, nil
}

// Run consumes until ctx ends. Sink failures are retried with backoff; the
// same messages are offered again until the sink takes them. Broker errors
// restart the group session with backoff; uncommitted messages come again.
func (c *Consumer) Run(ctx context.Context) error {
	backoff := cdc.Backoff{Min: time.Second, Max: 30 * time.Second}
	for {
		began := time.Now()
		err := c.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errTopicsChanged) {
			c.log.Info().Msg("topics of the group created or deleted; joining again with those that exist")
			continue
		}
		if time.Since(began) > time.Minute {
			backoff.Reset()
		}
		wait := backoff.Next()
		c.log.Warn().Err(err).Float64("retry_in_seconds", wait.Seconds()).Msg("consumer interrupted; restarting")
		if !cdc.Sleep(ctx, wait) {
			return nil
		}
	}
}

type topicPartition struct {
	topic     string
	partition int
}

// lagAfter notes in lags what is left of each partition after msgs, in
// offset order per partition, and returns the sum over the partitions.
func lagAfter(lags map[topicPartition]int64, msgs []kafka.Message) int64 {
	for _, m := range msgs {
		lags[topicPartition{m.Topic, m.Partition}] = max(m.HighWaterMark-m.Offset-1, 0)
	}
	var sum int64
	for _, n := range lags {
		sum += n
	}
	return sum
}

// topicPoll is how often a consumer checks whether its topics exist yet.
const topicPoll = time.Second

// waitTopics returns the topics of the group that exist once one does, or
// ctx ends. A group is joined with those only: kafka-go's leader assigns
// no partition at all, of any topic, while one of them is missing. The
// generation watches for the others (watchPartitions), and the session is
// joined again with them once they are created.
func (c *Consumer) waitTopics(ctx context.Context) ([]string, error) {
	client := &kafka.Client{Addr: kafka.TCP(c.cfg.Brokers...), Timeout: 10 * time.Second}
	tick := time.NewTicker(topicPoll)
	defer tick.Stop()
	logged := false
	for {
		missing, err := c.missingTopics(ctx, client)
		if err != nil {
			return nil, err
		}
		if len(missing) > 0 && !logged {
			c.log.Info().Strs("topics", missing).Msg("waiting for topics to be created")
			logged = true
		}
		if len(missing) < len(c.cfg.Topics) {
			return slices.DeleteFunc(slices.Clone(c.cfg.Topics), func(t string) bool { return slices.Contains(missing, t) }), nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// missingTopics returns the group's topics that do not exist. The metadata
// request does not create them.
func (c *Consumer) missingTopics(ctx context.Context, client *kafka.Client) ([]string, error) {
	res, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: c.cfg.Topics})
	if err != nil {
		return nil, fmt.Errorf("metadata of topics %q: %w", c.cfg.Topics, err)
	}
	found := make(map[string]bool, len(res.Topics))
	for _, t := range res.Topics {
		switch {
		case t.Error == nil:
			found[t.Name] = true
		case !errors.Is(t.Error, kafka.UnknownTopicOrPartition):
			return nil, fmt.Errorf("metadata of topic %q: %w", t.Name, t.Error)
		}
	}
	var missing []string
	for _, t := range c.cfg.Topics {
		if !found[t] {
			missing = append(missing, t)
		}
	}
	return missing, nil
}

// deliver parses the messages and writes them to the sink until it takes
// them. It fails when ctx ends, when begin says no before the first Write
// (the batch was abandoned), or when stop is closed before a Write is
// tried again: it gives up without writing again (errAbandoned).
func (c *Consumer) deliver(ctx context.Context, stop <-chan struct{}, begin func() bool, msgs []kafka.Message) error {
	events := make([]cdc.Event, 0, len(msgs))
	for i := range msgs {
		e, err := ParseMessage(msgs[i])
		if errors.Is(err, ErrNotAnEvent) {
			continue
		}
		if err != nil {
			// Not something cdcd can deliver; keep the partition moving and
			// say where it is.
			c.m.invalid.Inc()
			c.log.Error().Err(err).Str("topic", msgs[i].Topic).Int("partition", msgs[i].Partition).
				Int64("offset", msgs[i].Offset).Msg("skipping a message that is not a cdcd event")
			continue
		}
		if e.Origin != "" && e.Origin == c.cfg.System {
			if c.cfg.OnOrigin != nil {
				c.cfg.OnOrigin(c.cfg.System)
			}
			continue
		}
		if len(e.Pipelines) > 0 && !slices.Contains(e.Pipelines, c.cfg.Pipeline) {
			continue
		}
		events = append(events, e)
	}
	if len(events) == 0 {
		return nil
	}
	if !begin() {
		return errAbandoned
	}
	backoff := cdc.Backoff{Min: 200 * time.Millisecond, Max: 30 * time.Second}
	for {
		err := c.sink.Write(ctx, events)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := backoff.Next()
		c.log.Warn().Err(err).Int("events", len(events)).Float64("retry_in_seconds", wait.Seconds()).Msg("sink write failed; retrying")
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-stop:
			t.Stop()
			return errAbandoned
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// errAbandoned is a delivery given up before a Write, at a rebalance or a
// stop: the messages are not committed and come again.
var errAbandoned = errors.New("delivery abandoned")

// ErrNotAnEvent is ParseMessage's answer for a message that is part of
// the debezium format but not an event of its own: a tombstone, or the
// delete under the old key of a primary-key change.
var ErrNotAnEvent = errors.New("not an event of its own")

// ParseMessage reads a cdcd event from a Kafka message: the envelope, the
// key, and the event id header (inbound events' delivery ids). A
// primary-key change in the debezium format is read back as the one event
// cdcd captured: the create under the new key is the update, with the old
// key in Before; its delete under the old key and the tombstones are
// ErrNotAnEvent.
func ParseMessage(m kafka.Message) (cdc.Event, error) {
	if len(m.Value) == 0 {
		return cdc.Event{}, ErrNotAnEvent
	}
	e, err := cdc.ParseEnvelope(m.Key, m.Value)
	if err != nil {
		return cdc.Event{}, err
	}
	for _, h := range m.Headers {
		switch {
		case h.Key == HeaderPipelines:
			e.Pipelines = strings.Split(string(h.Value), ",")
		case h.Key == HeaderEventID && e.Pos.CommitLSN == 0:
			e.DeliveryID = string(h.Value)
		case h.Key == HeaderNewKey && e.Op == cdc.OpDelete:
			return cdc.Event{}, ErrNotAnEvent
		case h.Key == HeaderOldKey && e.Op == cdc.OpCreate:
			old, err := cdc.ParseKey(h.Value)
			if err != nil {
				return cdc.Event{}, fmt.Errorf("parse header %s: %w", HeaderOldKey, err)
			}
			e.Op, e.Before = cdc.OpUpdate, old
		}
	}
	return e, nil
}

type consumerMetrics struct {
	consumed     *prometheus.CounterVec
	lag          *prometheus.GaugeVec
	commitErrors prometheus.Counter
	invalid      prometheus.Counter
	drain        *prometheus.HistogramVec
	abandoned    *prometheus.CounterVec
	generations  *prometheus.CounterVec
}

func newConsumerMetrics(reg prometheus.Registerer) (*consumerMetrics, error) {
	m := &consumerMetrics{
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcd_kafka_consumed_total", Help: "Messages delivered to a sink and committed, by consumer group.",
		}, []string{"group"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cdcd_kafka_consumer_lag", Help: "Messages behind the end of the assigned partitions, by consumer group.",
		}, []string{"group"}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cdcd_kafka_commit_errors_total", Help: "Offset commits that failed (the messages are delivered again).",
		}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cdcd_kafka_invalid_messages_total", Help: "Messages skipped because they are not cdcd events.",
		}),
		drain: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cdcd_kafka_drain_seconds",
			Help:    "Time a member took, at a rebalance or a stop, to finish its Writes in flight and commit them before handing its partitions back, by consumer group.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 13),
		}, []string{"group"}),
		abandoned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcd_kafka_abandoned_messages_total", Help: "Messages handed back uncommitted at a rebalance or a stop (their Write not begun, failed, or cut at the drain's limit), delivered again by the next owner, by consumer group.",
		}, []string{"group"}),
		generations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcd_kafka_generations_total", Help: "Generations of its consumer group a member took part in (one per rebalance), by consumer group.",
		}, []string{"group"}),
	}
	if reg == nil {
		return m, nil
	}
	// Every pipeline's consumer shares these collectors.
	var err error
	if m.consumed, err = promshare.Register(reg, m.consumed); err != nil {
		return nil, err
	}
	if m.lag, err = promshare.Register(reg, m.lag); err != nil {
		return nil, err
	}
	if m.commitErrors, err = promshare.Register(reg, m.commitErrors); err != nil {
		return nil, err
	}
	if m.invalid, err = promshare.Register(reg, m.invalid); err != nil {
		return nil, err
	}
	if m.drain, err = promshare.Register(reg, m.drain); err != nil {
		return nil, err
	}
	if m.abandoned, err = promshare.Register(reg, m.abandoned); err != nil {
		return nil, err
	}
	if m.generations, err = promshare.Register(reg, m.generations); err != nil {
		return nil, err
	}
	return m, nil
}
