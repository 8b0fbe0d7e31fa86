package kafkabus

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// publishTable publishes n events of table, ids from..from+n-1, to its
// topic of 2 partitions; their event ids are distinct across tables.
func publishTable(t *testing.T, brokers []string, table string, from, n int) {
	t.Helper()
	p, err := New(Config{Brokers: brokers, CreateTopics: true, Partitions: 2}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	base := 100000 * (1 + int(table[0]))
	events := make([]cdc.Event, n)
	for i := range events {
		id := json.RawMessage(fmt.Sprint(from + i))
		events[i] = cdc.Event{
			Op: cdc.OpUpdate, Schema: "public", Table: table,
			Key: cdc.Row{{Name: "id", Value: id}}, After: cdc.Row{{Name: "id", Value: id}},
			Pos: cdc.Position{CommitLSN: cdc.LSN(base + from + i)},
		}
	}
	if err := p.Publish(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Regression test: when one of a group's topics was deleted (a table
// dropped from the publication, a topic removed by hand), kafka-go's
// partition watcher ended every generation as soon as it began, since it
// could not read the topic's partitions: the group rebalanced about 70
// times a second for as long as the topic was missing, and its other
// topics were barely read meanwhile. A missing topic now counts as one of
// no partitions; only a change of the counts starts a rebalance.
func TestDeletedTopicDoesNotStopTheGroup(t *testing.T) {
	k := cdctest.StartKafka(t, kfake.NumBrokers(1))
	brokers := k.Brokers()
	const kept, deleted = "cdcd.public.t", "cdcd.public.u"
	publishTable(t, brokers, "t", 0, 20)
	publishTable(t, brokers, "u", 0, 10)
	cfg := ConsumerConfig{Brokers: brokers, Group: "cdcd.deleted", Topics: []string{kept, deleted}, System: "erp", MaxBatch: 5, PartitionWatch: 200 * time.Millisecond}
	d := &deliveries{}
	c, _ := runConsumer(t, cfg, &vendorSink{d: d})
	cdctest.Eventually(t, 60*time.Second, "the messages of both topics delivered", func() bool {
		n, _ := d.count()
		return n == 30
	})
	generations := c.m.generations.WithLabelValues(cfg.Group)
	before := metricValue(generations)
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	if res, err := client.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{deleted}}); err != nil || res.Errors[deleted] != nil {
		t.Fatalf("delete topic %s: %v %v", deleted, err, res)
	}
	cdctest.Eventually(t, 60*time.Second, "the member to rejoin without the deleted topic", func() bool {
		return metricValue(generations) > before
	})
	publishTable(t, brokers, "t", 20, 20)
	cdctest.Eventually(t, 60*time.Second, "the new messages of the topic kept delivered", func() bool {
		n, _ := d.count()
		return n == 50
	})
	// Over 3 watch intervals at least, nothing changed.
	settled := time.Now()
	cdctest.Eventually(t, 60*time.Second, "3 partition watches", func() bool { return time.Since(settled) > 3*cfg.PartitionWatch })
	if n := metricValue(generations) - before; n > 3 {
		t.Fatalf("%v generations since the topic was deleted, want a rebalance or two", n)
	}
	// Created again, the topic is read again.
	publishTable(t, brokers, "u", 100, 40)
	cdctest.Eventually(t, 60*time.Second, "the messages of the topic created again delivered", func() bool {
		n, _ := d.count()
		return n == 90
	})
}
