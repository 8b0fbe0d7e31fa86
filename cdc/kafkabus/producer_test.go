package kafkabus

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

func TestPublishTopicsKeysAndOrder(t *testing.T) {
	t.Parallel()
	k := cdctest.StartKafka(t)
	p, _ := newTestProducer(t, k.Brokers(), testLogger(t), func(c *Config) {
		c.Partitions = 4
		c.BatchSize = 7 // several batches per partition
	})
	ctx := context.Background()

	tables := [][2]string{{"public", "contacts"}, {"public", "orders"}, {"crm", "deals"}}
	const txns, keys = 20, 5
	tr := cdc.NewTracker(0)
	for j := 1; j <= txns; j++ {
		lsn := cdc.LSN(j * 100)
		var events []cdc.Event
		for _, tb := range tables {
			for id := range keys {
				events = append(events, rowEvent(tb[0], tb[1], id, j, lsn, uint32(len(events))))
			}
		}
		keyless := rowEvent("public", "audit", 0, j, lsn, uint32(len(events)))
		keyless.Key = nil
		events = append(events, keyless)
		publishTxn(t, ctx, p, tr, lsn+1, events)
	}
	var inbound []*countAck
	for i := range 10 {
		e := rowEvent("hubspot", "contacts", i, 1, 0, 0)
		e.Source, e.Origin, e.DeliveryID = "hubspot", "hubspot", fmt.Sprintf("delivery-%d", i)
		a := new(countAck)
		e.Ack = a
		inbound = append(inbound, a)
		if err := p.Publish(ctx, []cdc.Event{e}); err != nil {
			t.Fatal(err)
		}
	}

	waitFor(t, "all transactions confirmed", 20*time.Second, func() bool {
		return tr.Confirmed() == txns*100+1 || tr.Err() != nil
	})
	if err := tr.Err(); err != nil {
		t.Fatalf("tracker nacked: %v", err)
	}
	waitFor(t, "inbound events acked", 20*time.Second, func() bool {
		for _, a := range inbound {
			if a.n.Load() == 0 {
				return false
			}
		}
		return true
	})

	brokers := k.Brokers()
	for _, tb := range tables {
		topic := "cdcd." + tb[0] + "." + tb[1]
		if n := cdctest.TopicPartitions(t, brokers, topic); n != 4 {
			t.Errorf("%s has %d partitions, want 4", topic, n)
		}
		recs := cdctest.ReadTopic(t, brokers, topic)
		if len(recs) != txns*keys {
			t.Fatalf("%s holds %d records, want %d", topic, len(recs), txns*keys)
		}
		partitionOf := map[string]int32{}
		lastSeq := map[string]int{}
		for _, r := range recs {
			env := decodeEnvelope(t, r.Value)
			id, seq := string(env.After["id"]), 0
			fmt.Sscan(string(env.After["seq"]), &seq)
			if want := `{"id":` + id + `}`; string(r.Key) != want {
				t.Fatalf("%s: key %q, want %q", topic, r.Key, want)
			}
			if env.Op != "u" || env.Source.Schema != tb[0] || env.Source.Table != tb[1] || env.Source.Origin != nil {
				t.Fatalf("%s: envelope %s does not describe the event", topic, r.Value)
			}
			wantID := cdc.Position{CommitLSN: cdc.LSN(env.Source.LSN), Index: env.Source.Index}.String()
			if h, _ := r.Header(HeaderEventID); h != wantID || env.Source.LSN != uint64(seq*100) {
				t.Fatalf("%s: event id header %q, want %q at lsn %d", topic, h, wantID, seq*100)
			}
			if _, ok := r.Header(HeaderOrigin); ok {
				t.Fatalf("%s: origin header on a local change", topic)
			}
			if part, ok := partitionOf[id]; ok && part != r.Partition {
				t.Fatalf("%s: key %s in partitions %d and %d", topic, id, part, r.Partition)
			}
			partitionOf[id] = r.Partition
			if seq != lastSeq[id]+1 {
				t.Fatalf("%s: key %s has seq %d after %d", topic, id, seq, lastSeq[id])
			}
			lastSeq[id] = seq
		}
	}

	audit := cdctest.ReadTopic(t, brokers, "cdcd.public.audit")
	if len(audit) != txns {
		t.Fatalf("audit holds %d records, want %d", len(audit), txns)
	}
	for i, r := range audit {
		if r.Key != nil || r.Partition != audit[0].Partition {
			t.Fatalf("keyless record %d: key %q in partition %d, want a null key in one partition", i, r.Key, r.Partition)
		}
		if seq := string(decodeEnvelope(t, r.Value).After["seq"]); seq != fmt.Sprint(i+1) {
			t.Fatalf("keyless record %d has seq %s", i, seq)
		}
	}

	in := cdctest.ReadTopic(t, brokers, "cdcd.hubspot.contacts")
	if len(in) != len(inbound) {
		t.Fatalf("inbound topic holds %d records, want %d", len(in), len(inbound))
	}
	seen := map[string]bool{}
	for _, r := range in {
		id, _ := r.Header(HeaderEventID)
		origin, _ := r.Header(HeaderOrigin)
		env := decodeEnvelope(t, r.Value)
		if !strings.HasPrefix(id, "delivery-") || origin != "hubspot" || env.Source.Origin == nil || *env.Source.Origin != "hubspot" {
			t.Fatalf("inbound record: id %q origin %q envelope %s", id, origin, r.Value)
		}
		seen[id] = true
	}
	if len(seen) != len(inbound) {
		t.Fatalf("inbound delivery ids %v, want %d distinct", seen, len(inbound))
	}

	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	for i, a := range inbound {
		if n, err := a.n.Load(), a.Err(); n != 1 || err != nil {
			t.Errorf("inbound event %d settled %d times, last with %v; want once with nil", i, n, err)
		}
	}
	total := float64(txns*(len(tables)*keys+1) + len(inbound))
	if got := metricValue(p.m.messages); got != total {
		t.Errorf("cdcd_kafka_messages_total = %v, want %v", got, total)
	}
	if got := metricValue(p.m.buffered); got != 0 {
		t.Errorf("cdcd_kafka_buffered_events = %v after close, want 0", got)
	}
	if err := p.Publish(ctx, []cdc.Event{rowEvent("public", "contacts", 1, 1, 1, 0)}); err != ErrClosed {
		t.Errorf("publish after close: %v, want ErrClosed", err)
	}
}

func TestEnsureTopics(t *testing.T) {
	t.Parallel()
	const existing = "cdcd.public.existing"
	k := cdctest.StartKafka(t)
	k.CreateTopic(t, existing, 2)
	for _, create := range []bool{false, true} {
		t.Run(fmt.Sprint("create=", create), func(t *testing.T) {
			p, _ := newTestProducer(t, k.Brokers(), testLogger(t), func(c *Config) { c.CreateTopics = create })
			ctx := context.Background()

			// A topic that already exists is used as it is.
			a := new(countAck)
			e := rowEvent("public", "existing", 1, 1, 1, 0)
			e.Ack = a
			if err := p.Publish(ctx, []cdc.Event{e}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "ack", 10*time.Second, func() bool { return a.n.Load() == 1 })
			if err := a.Err(); err != nil {
				t.Fatalf("ack: %v", err)
			}
			if n := cdctest.TopicPartitions(t, k.Brokers(), existing); n != 2 {
				t.Fatalf("existing topic has %d partitions, want 2", n)
			}

			table := fmt.Sprintf("new_%v", create)
			missing := rowEvent("public", table, 1, 1, 1, 0)
			b := new(countAck)
			missing.Ack = b
			err := p.Publish(ctx, []cdc.Event{missing})
			if create {
				if err != nil {
					t.Fatal(err)
				}
				waitFor(t, "ack", 10*time.Second, func() bool { return b.n.Load() == 1 })
				if n := cdctest.TopicPartitions(t, k.Brokers(), "cdcd.public."+table); n != defaultPartitions || b.Err() != nil {
					t.Fatalf("created topic has %d partitions (ack %v), want %d", n, b.Err(), defaultPartitions)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "does not exist") || b.n.Load() != 1 || b.Err() != err {
				t.Fatalf("publish to a missing topic: %v, settled %d times with %v; want a nack naming the problem", err, b.n.Load(), b.Err())
			}
			if n := cdctest.TopicPartitions(t, k.Brokers(), "cdcd.public."+table); n != 0 {
				t.Fatalf("topic was created without create_topics")
			}
		})
	}
}

func TestTopicName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ schema, table, want string }{
		{"public", "contacts", "cdcd.public.contacts"},
		{"Sales", "order items", "cdcd.Sales.order_items"},
		{"public", "café", "cdcd.public.caf__"},
	} {
		if got := TopicName("cdcd", tc.schema, tc.table); got != tc.want {
			t.Errorf("TopicName(%q, %q) = %q, want %q", tc.schema, tc.table, got, tc.want)
		}
	}
}

func TestAppendEventID(t *testing.T) {
	t.Parallel()
	for _, e := range []cdc.Event{
		{},
		{Pos: cdc.Position{CommitLSN: 0x16B3748, Index: 3}},
		{Pos: cdc.Position{CommitLSN: 0xFFFFFFFF_0000000A, Index: 4294967295}},
		{DeliveryID: "evt-1", Pos: cdc.Position{CommitLSN: 5}},
	} {
		if got := string(appendEventID(nil, &e)); got != e.ID() {
			t.Errorf("appendEventID = %q, want %q", got, e.ID())
		}
	}
}

func FuzzAppendEventID(f *testing.F) {
	f.Add(uint64(0x16B3748), uint32(3))
	f.Fuzz(func(t *testing.T, lsn uint64, index uint32) {
		e := cdc.Event{Pos: cdc.Position{CommitLSN: cdc.LSN(lsn), Index: index}}
		if got := string(appendEventID([]byte("x"), &e)); got != "x"+e.ID() {
			t.Fatalf("appendEventID = %q, want x%q", got, e.ID())
		}
	})
}
