package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cdcd-dev/cdcd/cdc"
)

// session joins the group and consumes one generation after another until
// ctx ends or a generation fails. Leaving (Close) comes after the last
// generation handed its partitions back.
func (c *Consumer) session(ctx context.Context) error {
	topics, err := c.waitTopics(ctx)
	if err != nil {
		return err
	}
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                c.cfg.Group,
		Brokers:           c.cfg.Brokers,
		Topics:            topics,
		Dialer:            c.dialer(),
		StartOffset:       kafka.FirstOffset,
		SessionTimeout:    c.cfg.SessionTimeout,
		HeartbeatInterval: c.cfg.Heartbeat,
		// The coordinator waits this long for every member to rejoin a
		// rebalance: a member rejoins once its Writes in flight are done.
		RebalanceTimeout: c.cfg.RebalanceTimeout,
		// The generation watches the partition counts itself
		// (watchPartitions): kafka-go's watcher ends every generation at
		// once while a topic is missing.
		JoinGroupBackoff: time.Second,
		ErrorLogger:      c.kafkaLog(),
	})
	if err != nil {
		return fmt.Errorf("consumer group %q: %w", c.cfg.Group, err)
	}
	defer cg.Close()
	c.log.Info().Strs("topics", topics).Msg("consumer started")

	lags := map[topicPartition]int64{}
	for {
		gen, err := cg.Next(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			// The group retries by itself (a rebalance in progress, a
			// coordinator moving); say so and wait for the generation.
			c.log.Debug().Err(err).Msg("joining the consumer group")
			continue
		}
		c.m.generations.WithLabelValues(c.cfg.Group).Inc()
		ended := make(chan error, 1)
		gen.Start(func(gctx context.Context) {
			err := c.generation(ctx, gctx, gen, topics, lags)
			if errors.Is(err, errPartitionsChanged) {
				// Returning ends the generation: the member rejoins,
				// which starts a rebalance that assigns the partitions.
				ended <- nil
				return
			}
			ended <- err
			// After a rebalance gctx is done already; after a stop or an
			// error the member is to leave instead of rejoining, which
			// Close does, and that ends gctx.
			<-gctx.Done()
		})
		if err := <-ended; err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func (c *Consumer) dialer() *kafka.Dialer {
	return &kafka.Dialer{ClientID: c.cfg.ClientID, Timeout: 10 * time.Second, DualStack: true}
}

func (c *Consumer) kafkaLog() kafka.Logger {
	return kafka.LoggerFunc(func(msg string, args ...any) { c.log.Debug().Msgf(msg, args...) })
}

// flight is a batch handed to the sink; done gets deliver's result.
type flight struct {
	msgs  []kafka.Message
	done  chan error
	state atomic.Int32 // flightPending, then flightWriting or flightAbandoned
}

// A flight's state: its first Write begins only if it was not abandoned.
const (
	flightPending int32 = iota
	flightWriting
	flightAbandoned
)

// begin says whether f's first Write may begin: it was not abandoned.
func (f *flight) begin() bool {
	return f.state.CompareAndSwap(flightPending, flightWriting) || f.state.Load() == flightWriting
}

// abandonPending abandons the flights after the last one whose Write
// began. An earlier flight not begun yet is still written: a later batch
// of the same partitions that was delivered could not be committed past
// it, and its next owner would deliver it again.
func abandonPending(flights []*flight) {
	for i := len(flights) - 1; i >= 0; i-- {
		if !flights[i].state.CompareAndSwap(flightPending, flightAbandoned) {
			return
		}
	}
}

// generation consumes the partitions gen assigned to this member until gctx
// ends (a rebalance: a member joined or left, partitions were added), ctx
// ends (a stop) or a fetch fails. Then it hands the partitions back clean:
// it stops fetching, abandons the batches after the last one begun, waits
// for the Writes in flight and commits what they delivered, so the next
// owner of a partition starts after everything this member wrote. See
// drain for how long it waits.
//
// Messages are fetched ahead, up to a batch, while the sink writes; the
// next batch is what was fetched meanwhile, so a batch never waits for
// more messages than have come. An Overlapping sink gets the next batches
// while it still writes one; offsets are committed batch after batch, in
// order.
func (c *Consumer) generation(ctx, gctx context.Context, gen *kafka.Generation, topics []string, lags map[topicPartition]int64) error {
	fetchCtx, stopFetch := context.WithCancel(ctx)
	var fetchers sync.WaitGroup
	defer fetchers.Wait()
	defer stopFetch()
	fetched := make(chan kafka.Message, c.cfg.MaxBatch)
	fetchErr := make(chan error, 1)
	changed := make(chan error, 1)
	fetchers.Go(func() { c.watchPartitions(fetchCtx, topics, changed) })
	assigned := map[topicPartition]bool{}
	for topic, parts := range gen.Assignments {
		for _, p := range parts {
			assigned[topicPartition{topic, p.ID}] = true
			fetchers.Go(func() { c.fetch(fetchCtx, topic, p, fetched, fetchErr) })
		}
	}
	// A partition that went to another member is no longer this member's
	// lag; one it got counts from where it starts.
	for tp := range lags {
		if !assigned[tp] {
			delete(lags, tp)
		}
	}
	c.startLags(ctx, gen, lags)
	c.m.lag.WithLabelValues(c.cfg.Group).Set(float64(lagAfter(lags, nil)))
	c.log.Debug().Int32("generation", gen.ID).Int("partitions", len(assigned)).Msg("partitions assigned")

	// Writes outlive ctx: at a stop, drain gives them DrainTimeout.
	wctx, cancelWrites := context.WithCancel(context.WithoutCancel(ctx))
	var writes sync.WaitGroup
	defer writes.Wait()
	defer cancelWrites()
	stop := make(chan struct{}) // closed when the generation is over
	window := cdc.WriteWindow(c.sink)
	var flights []*flight
	var why error // a fetch failure ends the generation with an error
loop:
	for {
		var in <-chan kafka.Message
		if len(flights) < window {
			in = fetched
		}
		var oldest <-chan error
		if len(flights) > 0 {
			oldest = flights[0].done
		}
		select {
		case m := <-in:
			f := &flight{msgs: append(make([]kafka.Message, 0, len(fetched)+1), m), done: make(chan error, 1)}
		more:
			for len(f.msgs) < c.cfg.MaxBatch {
				select {
				case m := <-fetched:
					f.msgs = append(f.msgs, m)
				default:
					break more
				}
			}
			flights = append(flights, f)
			writes.Go(func() { f.done <- c.deliver(wctx, stop, f.begin, f.msgs) })
		case err := <-oldest:
			if err != nil {
				return fmt.Errorf("deliver to group %q: %w", c.cfg.Group, err) // deliver fails only once stop is closed
			}
			f := flights[0]
			flights = flights[1:]
			if err := c.commit(gen, f.msgs, lags); err != nil {
				return err
			}
		case <-gctx.Done():
			break loop
		case <-ctx.Done():
			break loop
		case why = <-fetchErr:
			break loop
		case why = <-changed:
			break loop
		}
	}
	stopFetch()
	abandonPending(flights)
	close(stop)
	if err := c.drain(ctx, gen, flights, lags, cancelWrites); err != nil {
		return err
	}
	if why != nil {
		return fmt.Errorf("consume group %q: %w", c.cfg.Group, why)
	}
	return nil
}

// errPartitionsChanged ends a generation whose topics' partition counts
// changed: the member rejoins the group. errTopicsChanged ends the
// session: a topic of the group was created or deleted, and the group is
// joined again with the topics that exist (see waitTopics).
var (
	errPartitionsChanged = errors.New("partitions of the topics changed")
	errTopicsChanged     = errors.New("topics of the group created or deleted")
)

// watchPartitions sends on changed, and returns, once one of the group's
// topics was created or deleted since the session subscribed to topics
// (errTopicsChanged), or the partition count of one differs from what it
// was when the watch began (errPartitionsChanged), looking every
// PartitionWatch until ctx ends. A failed look is tried again at the
// next.
func (c *Consumer) watchPartitions(ctx context.Context, topics []string, changed chan<- error) {
	client := &kafka.Client{Addr: kafka.TCP(c.cfg.Brokers...), Timeout: 10 * time.Second}
	tick := time.NewTicker(c.cfg.PartitionWatch)
	defer tick.Stop()
	var first map[string]int
	for {
		if counts, err := c.partitionCounts(ctx, client); err == nil {
			exist := 0
			for _, n := range counts {
				if n > 0 {
					exist++
				}
			}
			subscribed := true
			for _, t := range topics {
				subscribed = subscribed && counts[t] > 0
			}
			switch {
			case !subscribed || exist != len(topics):
				changed <- errTopicsChanged
				return
			case first == nil:
				first = counts
			case !maps.Equal(first, counts):
				c.log.Info().Msg("partitions of the topics changed; rejoining the group")
				changed <- errPartitionsChanged
				return
			}
		} else if ctx.Err() == nil {
			c.log.Debug().Err(err).Msg("watch the partitions of the topics")
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// partitionCounts returns the number of partitions of each topic of the
// group, 0 for a topic that does not exist. The request creates none.
func (c *Consumer) partitionCounts(ctx context.Context, client *kafka.Client) (map[string]int, error) {
	res, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: c.cfg.Topics})
	if err != nil {
		return nil, err
	}
	counts := make(map[string]int, len(c.cfg.Topics))
	for _, t := range c.cfg.Topics {
		counts[t] = 0
	}
	for _, t := range res.Topics {
		if t.Error != nil && !errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
			return nil, fmt.Errorf("metadata of topic %q: %w", t.Name, t.Error)
		}
		if t.Error == nil {
			counts[t.Name] = len(t.Partitions)
		}
	}
	return counts, nil
}

// startLags notes in lags what is left of each partition gen assigned,
// from the offset it starts at to its end, so that a sink taking nothing
// from the start (down, or stalled on partitions taken over at a
// rebalance) shows its backlog; commits update them after. Without an
// answer from the brokers, a partition counts from its first commit.
func (c *Consumer) startLags(ctx context.Context, gen *kafka.Generation, lags map[topicPartition]int64) {
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	starts := map[topicPartition]int64{}
	for topic, parts := range gen.Assignments {
		for _, p := range parts {
			starts[topicPartition{topic, p.ID}] = p.Offset
			req.Topics[topic] = append(req.Topics[topic], kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
		}
	}
	if len(starts) == 0 {
		return
	}
	client := &kafka.Client{Addr: kafka.TCP(c.cfg.Brokers...), Timeout: 5 * time.Second}
	res, err := client.ListOffsets(ctx, req)
	if err != nil {
		c.log.Debug().Err(err).Msg("end offsets of the assigned partitions")
		return
	}
	for topic, parts := range res.Topics {
		for _, p := range parts {
			tp := topicPartition{topic, p.Partition}
			start, ok := starts[tp]
			if !ok || p.Error != nil || p.LastOffset < 0 {
				continue
			}
			if start < 0 { // nothing committed yet: from the first offset kept
				start = max(p.FirstOffset, 0)
			}
			lags[tp] = max(p.LastOffset-start, 0)
		}
	}
}

// fetch reads partition p of topic from its assigned offset into fetched
// until ctx ends; a failure goes to failed.
func (c *Consumer) fetch(ctx context.Context, topic string, p kafka.PartitionAssignment, fetched chan<- kafka.Message, failed chan<- error) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     c.cfg.Brokers,
		Topic:       topic,
		Partition:   p.ID,
		MinBytes:    1,
		MaxBytes:    16 << 20,
		MaxWait:     250 * time.Millisecond,
		Dialer:      c.dialer(),
		ErrorLogger: c.kafkaLog(),
	})
	defer r.Close()
	err := r.SetOffset(p.Offset)
	for err == nil {
		var m kafka.Message
		if m, err = r.FetchMessage(ctx); err != nil {
			break
		}
		select {
		case fetched <- m:
		case <-ctx.Done():
			return
		}
	}
	if ctx.Err() != nil {
		return
	}
	select {
	case failed <- fmt.Errorf("fetch %s[%d]: %w", topic, p.ID, err):
	default:
	}
}

// drain waits for the flights and commits what they delivered, up to
// the first message of each partition that was not (committable): a
// Write that was abandoned or cancelled, and everything after it in its
// partitions, comes again to whoever owns the partitions next. The
// flights after the last one begun are abandoned (abandonPending) and
// failed ones are not tried again (deliver sees stop). At a stop the Writes in flight get
// DrainTimeout; at a rebalance, the rebalance timeout less commitBudget,
// or DrainTimeout from a stop that comes meanwhile, if that is sooner.
// Then they are cancelled. Meanwhile the member heartbeats, so that the
// coordinator keeps it in the group while it waits for it to rejoin.
func (c *Consumer) drain(ctx context.Context, gen *kafka.Generation, flights []*flight, lags map[topicPartition]int64, cancelWrites func()) error {
	if len(flights) == 0 {
		return nil
	}
	began := time.Now()
	deadline := began.Add(c.cfg.RebalanceTimeout - commitBudget)
	dctx, drained := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	defer wg.Wait()
	defer drained()
	wg.Go(func() { c.heartbeat(dctx, gen) })
	wg.Go(func() {
		stopping := ctx.Done()
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		for {
			select {
			case <-t.C:
				cancelWrites()
				return
			case <-stopping:
				stopping = nil
				if d := time.Now().Add(c.cfg.DrainTimeout); d.Before(deadline) {
					deadline = d
					t.Reset(time.Until(deadline))
				}
			case <-dctx.Done():
				return
			}
		}
	})

	delivered := make([]bool, len(flights))
	for i, f := range flights {
		delivered[i] = <-f.done == nil
	}
	done, left := committable(flights, delivered)
	if len(done) > 0 {
		if err := c.commit(gen, done, lags); err != nil {
			return err
		}
	}
	took := time.Since(began)
	c.m.drain.WithLabelValues(c.cfg.Group).Observe(took.Seconds())
	c.m.abandoned.WithLabelValues(c.cfg.Group).Add(float64(left))
	c.log.Info().Int("committed", len(done)).Int("handed_back", left).
		Float64("drain_seconds", took.Seconds()).Msg("writes in flight drained; partitions handed back")
	return nil
}

// committable splits the messages of flights, in order, into those that
// can be committed (every earlier message of their partition was
// delivered) and the number of those left to the partitions' next owner:
// a flight's messages when it was not delivered, and the later ones of
// the same partitions, which must come again after them.
func committable(flights []*flight, delivered []bool) (done []kafka.Message, left int) {
	blocked := map[topicPartition]bool{}
	for i, f := range flights {
		for _, m := range f.msgs {
			tp := topicPartition{m.Topic, m.Partition}
			if !delivered[i] {
				blocked[tp] = true
			}
			if blocked[tp] {
				left++
				continue
			}
			done = append(done, m)
		}
	}
	return done, left
}

// heartbeat tells the coordinator that the member of gen is alive until
// ctx ends: the generation's own heartbeats ended with it, and a member
// silent for the session timeout is dropped from the group. A failure
// only means that the commit after the drain may find the member gone.
func (c *Consumer) heartbeat(ctx context.Context, gen *kafka.Generation) {
	client := &kafka.Client{Addr: kafka.TCP(c.cfg.Brokers...), Timeout: c.cfg.Heartbeat}
	var coordinator net.Addr
	tick := time.NewTicker(c.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if coordinator == nil {
			// Heartbeats go to the group's coordinator, which kafka-go's
			// client does not look up for them.
			res, err := client.FindCoordinator(ctx, &kafka.FindCoordinatorRequest{Key: c.cfg.Group})
			if err == nil {
				err = res.Error
			}
			if err != nil {
				c.log.Debug().Err(err).Msg("find the group coordinator")
				continue
			}
			coordinator = kafka.TCP(net.JoinHostPort(res.Coordinator.Host, strconv.Itoa(res.Coordinator.Port)))
		}
		res, err := client.Heartbeat(ctx, &kafka.HeartbeatRequest{Addr: coordinator, GroupID: gen.GroupID, GenerationID: gen.ID, MemberID: gen.MemberID})
		if err == nil && res.Error != nil && !errors.Is(res.Error, kafka.RebalanceInProgress) {
			err = res.Error
		}
		if err != nil {
			c.log.Debug().Err(err).Msg("heartbeat while writes drain")
			coordinator = nil
		}
	}
}

// commit commits the offsets after msgs, in offset order per partition,
// in the generation gen.
func (c *Consumer) commit(gen *kafka.Generation, msgs []kafka.Message, lags map[topicPartition]int64) error {
	offsets := map[string]map[int]int64{}
	for _, m := range msgs {
		if offsets[m.Topic] == nil {
			offsets[m.Topic] = map[int]int64{}
		}
		offsets[m.Topic][m.Partition] = m.Offset + 1
	}
	if err := gen.CommitOffsets(offsets); err != nil {
		c.m.commitErrors.Inc()
		return fmt.Errorf("commit offsets of group %q: %w", c.cfg.Group, err)
	}
	c.m.consumed.WithLabelValues(c.cfg.Group).Add(float64(len(msgs)))
	c.m.lag.WithLabelValues(c.cfg.Group).Set(float64(lagAfter(lags, msgs)))
	return nil
}
