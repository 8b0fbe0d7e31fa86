package kafkabus

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// deliveries counts, across the members of a group, how often each event
// reached a sink.
type deliveries struct {
	mu sync.Mutex
	n  map[string]int
}

func (d *deliveries) add(events []cdc.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == nil {
		d.n = map[string]int{}
	}
	for _, e := range events {
		d.n[e.ID()]++
	}
}

// count returns how many distinct events were delivered and those
// delivered more than once.
func (d *deliveries) count() (distinct int, twice []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, n := range d.n {
		if n > 1 {
			twice = append(twice, fmt.Sprintf("%s×%d", id, n))
		}
	}
	slices.Sort(twice)
	return len(d.n), twice
}

// vendorSink stands for a sink without lookups (the http system): every
// Write it finishes is a delivery, a second one of the same event a
// duplicate at the vendor. A Write takes delay; while gate holds a
// channel, Writes wait for it to close first. A Write whose ctx ends
// before it finished delivered nothing. Up to four Writes run at once.
type vendorSink struct {
	d      *deliveries
	delay  time.Duration
	gate   atomic.Pointer[chan struct{}]
	active atomic.Int32
	done   atomic.Int32 // events delivered
}

func (s *vendorSink) Write(ctx context.Context, events []cdc.Event) error {
	s.active.Add(1)
	defer s.active.Add(-1)
	if g := s.gate.Load(); g != nil {
		select {
		case <-*g:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	t := time.NewTimer(s.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.d.add(events)
	s.done.Add(int32(len(events)))
	return nil
}

func (s *vendorSink) Overlap() int                { return 4 }
func (s *vendorSink) Close(context.Context) error { return nil }

// publishSeq publishes n events with the ids from..from+n-1 over 60 keys
// to a topic of 6 partitions.
func publishSeq(t *testing.T, brokers []string, from, n int) {
	t.Helper()
	p, err := New(Config{Brokers: brokers, CreateTopics: true, Partitions: 6}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	events := make([]cdc.Event, n)
	for i := range events {
		id := json.RawMessage(fmt.Sprint((from + i) % 60))
		events[i] = cdc.Event{
			Op: cdc.OpUpdate, Schema: "public", Table: "t",
			Key: cdc.Row{{Name: "id", Value: id}}, After: cdc.Row{{Name: "id", Value: id}},
			Pos: cdc.Position{CommitLSN: cdc.LSN(1 + from + i)},
		}
	}
	if err := p.Publish(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// groupState is the coordinator's state of group ("Stable",
// "PreparingRebalance", ...), or "" when it cannot say.
func groupState(brokers []string, group string) string {
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	res, err := c.DescribeGroups(context.Background(), &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil || len(res.Groups) == 0 {
		return ""
	}
	return res.Groups[0].GroupState
}

// Regression test for a change sent twice at scale-out: a member joining
// the group took partitions whose messages the other member's sink was
// still writing (kafka-go's group Reader gave them up at the rebalance
// without waiting for those Writes or committing them), so the new member
// read them again from the last commit and delivered them a second time.
// Members that join and leave cleanly must deliver every message once.
func TestRebalanceDeliversEachMessageOnce(t *testing.T) {
	k := cdctest.StartKafka(t, kfake.NumBrokers(1))
	const group, topic = "cdcd.rebalance", "cdcd.public.t"
	brokers := k.Brokers()
	publishSeq(t, brokers, 0, 600)
	d := &deliveries{}
	cfg := ConsumerConfig{Brokers: brokers, Group: group, Topics: []string{topic}, System: "erp", MaxBatch: 5}

	// The first member's Writes are held while the second one joins.
	held := make(chan struct{})
	a := &vendorSink{d: d, delay: 10 * time.Millisecond}
	a.gate.Store(&held)
	_, stopA := runConsumer(t, cfg, a)
	cdctest.Eventually(t, 60*time.Second, "the first member to have Writes in flight", func() bool { return a.active.Load() >= 2 })

	b := &vendorSink{d: d, delay: 10 * time.Millisecond}
	runConsumer(t, cfg, b)
	cdctest.Eventually(t, 60*time.Second, "the second member to start a rebalance", func() bool {
		return groupState(brokers, group) == "PreparingRebalance"
	})
	// Hold on until the second member delivers, which it must not do with
	// what the first still writes, or for longer than the session
	// timeout: a member that waits for its Writes holds the rebalance up
	// meanwhile, and must stay in the group while it does.
	rebalancing := time.Now()
	hold := defaultSessionTimeout + 2*time.Second
	cdctest.Eventually(t, 60*time.Second, "the second member to deliver, or the hold", func() bool {
		return b.done.Load() > 0 || time.Since(rebalancing) > hold
	})
	a.gate.Store(nil)
	close(held)

	cdctest.Eventually(t, 60*time.Second, "both members to hold partitions", func() bool {
		return len(assignedTo(brokers, group)) == 2
	})
	publishSeq(t, brokers, 600, 300)
	cdctest.Eventually(t, 60*time.Second, "both members to deliver", func() bool {
		return a.done.Load() > 0 && b.done.Load() > 0
	})
	// The first member leaves with Writes in flight (or just done).
	cdctest.Eventually(t, 60*time.Second, "the first member to have a Write in flight", func() bool {
		n, _ := d.count()
		return a.active.Load() > 0 || n == 900
	})
	stopA()
	publishSeq(t, brokers, 900, 100)
	cdctest.Eventually(t, 60*time.Second, "every message delivered", func() bool {
		n, _ := d.count()
		return n == 1000
	})
	if n, twice := d.count(); len(twice) > 0 {
		t.Fatalf("%d of %d messages delivered more than once: %v", len(twice), n, twice[:min(len(twice), 20)])
	}
}

// committed returns the sum of group's committed offsets on topic: the
// messages it committed, counting from offset 0.
func committed(t *testing.T, brokers []string, group, topic string, partitions int) int64 {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	ids := make([]int, partitions)
	for i := range ids {
		ids[i] = i
	}
	res, err := c.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	if err != nil || res.Error != nil {
		t.Fatalf("offsets of %s: %v %v", group, err, res.Error)
	}
	var sum int64
	for _, p := range res.Topics[topic] {
		sum += max(p.CommittedOffset, 0)
	}
	return sum
}

// A stop hands the partitions back like a rebalance: the Writes in flight
// finish within DrainTimeout and are committed; past it they are
// cancelled, not committed, and come again to the next member.
func TestStopDrainsTheWritesInFlight(t *testing.T) {
	for _, tc := range []struct {
		name    string
		drain   time.Duration
		release bool
	}{
		{"finished", 30 * time.Second, true},
		{"cut", 200 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k := cdctest.StartKafka(t, kfake.NumBrokers(1))
			const group, topic = "cdcd.stop", "cdcd.public.t"
			brokers := k.Brokers()
			publishSeq(t, brokers, 0, 100)
			d := &deliveries{}
			held := make(chan struct{})
			a := &vendorSink{d: d}
			a.gate.Store(&held)
			cfg := ConsumerConfig{Brokers: brokers, Group: group, Topics: []string{topic}, System: "erp", MaxBatch: 5, DrainTimeout: tc.drain}
			_, stop := runConsumer(t, cfg, a)
			cdctest.Eventually(t, 60*time.Second, "Writes in flight", func() bool { return a.active.Load() >= 2 })

			stopped := make(chan struct{})
			go func() { stop(); close(stopped) }()
			if tc.release {
				close(held)
			}
			select {
			case <-stopped:
			case <-time.After(60 * time.Second):
				t.Fatal("the consumer did not stop")
			}
			n, _ := d.count()
			if tc.release && n == 0 {
				t.Fatal("the Writes in flight at the stop delivered nothing")
			}
			if c := committed(t, brokers, group, topic, 6); c != int64(n) {
				t.Fatalf("%d messages committed, %d delivered", c, n)
			}

			runConsumer(t, cfg, &vendorSink{d: d})
			cdctest.Eventually(t, 60*time.Second, "every message delivered", func() bool {
				n, _ := d.count()
				return n == 100
			})
			if _, twice := d.count(); len(twice) > 0 {
				t.Fatalf("delivered more than once: %v", twice)
			}
		})
	}
}

// A drain commits, per partition, what was delivered before the first
// batch that was not: a failed batch holds back only its own partitions.
func TestDrainCommitsEachPartitionUpToItsFirstUndelivered(t *testing.T) {
	t.Parallel()
	msg := func(p int, off int64) kafka.Message { return kafka.Message{Topic: "t", Partition: p, Offset: off} }
	flights := []*flight{
		{msgs: []kafka.Message{msg(0, 10), msg(1, 20)}}, // delivered
		{msgs: []kafka.Message{msg(1, 21), msg(2, 30)}}, // failed: holds back partitions 1 and 2
		{msgs: []kafka.Message{msg(0, 11), msg(1, 22)}}, // delivered: partition 0 is committed, 1 is not
		{msgs: []kafka.Message{msg(2, 31), msg(3, 40)}}, // delivered: only partition 3 is committed
	}
	done, left := committable(flights, []bool{true, false, true, true})
	var got []string
	for _, m := range done {
		got = append(got, fmt.Sprintf("%d@%d", m.Partition, m.Offset))
	}
	if want := []string{"0@10", "1@20", "0@11", "3@40"}; !slices.Equal(got, want) || left != 4 {
		t.Fatalf("committable %v with %d left, want %v with 4", got, left, want)
	}
}

// Regression test: at a rebalance a batch whose Write had not begun was
// abandoned even when a later batch, of the same partitions, had begun
// (the goroutines of the Writes start in any order): that later batch was
// delivered but could not be committed past the abandoned one, and the
// next owner delivered it again (1 or 2 messages of 660 in each run).
// Only the batches after the last one begun may be abandoned.
func TestMembersJoiningAndLeavingOverAndOverDeliverEachMessageOnce(t *testing.T) {
	k := cdctest.StartKafka(t, kfake.NumBrokers(1))
	const group, topic = "cdcd.churn", "cdcd.public.t"
	brokers := k.Brokers()
	publishSeq(t, brokers, 0, 60)
	d := &deliveries{}
	cfg := ConsumerConfig{Brokers: brokers, Group: group, Topics: []string{topic}, System: "erp", MaxBatch: 5, Heartbeat: 300 * time.Millisecond}
	runConsumer(t, cfg, &vendorSink{d: d})
	const rounds = 10
	for i := range rounds {
		_, stop := runConsumer(t, cfg, &vendorSink{d: d})
		cdctest.Eventually(t, 60*time.Second, "both members to hold partitions", func() bool {
			return len(assignedTo(brokers, group)) == 2
		})
		publishSeq(t, brokers, 60*(i+1), 60)
		stop()
		cdctest.Eventually(t, 60*time.Second, "the first member to hold every partition", func() bool {
			return len(assignedTo(brokers, group)) == 1 && groupState(brokers, group) == "Stable"
		})
	}
	cdctest.Eventually(t, 60*time.Second, "every message delivered", func() bool {
		n, _ := d.count()
		return n == 60*(rounds+1)
	})
	if n, twice := d.count(); len(twice) > 0 {
		t.Fatalf("%d of %d messages delivered more than once: %v", len(twice), n, twice)
	}
}
