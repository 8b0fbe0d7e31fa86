package cdctest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// KafkaBrokersEnv names a real Kafka cluster (host:port, comma-separated)
// that StartKafka hands out instead of starting kfake, so that the bus
// tests check a user's brokers:
//
//	CDCD_KAFKA_BROKERS=kafka-1:9092 go test -p 1 -count=1 ./cdc/kafkabus ./sinks/kafka
//
// The cluster must be one for tests only: before each test every topic
// but Kafka's internal ones (names starting "__") is deleted, and tests
// that inject broker faults are skipped. Tests run one at a time within a
// package; -p 1 keeps packages from running at once.
const KafkaBrokersEnv = "CDCD_KAFKA_BROKERS"

// externalKafka serialises the tests of a package on the external cluster.
var externalKafka sync.Mutex

func useExternalKafka(t testing.TB, brokers []string) *Kafka {
	t.Helper()
	externalKafka.Lock()
	t.Cleanup(externalKafka.Unlock)
	for i := range brokers {
		brokers[i] = strings.TrimSpace(brokers[i])
	}
	if err := deleteTestTopics(brokers); err != nil {
		t.Fatalf("%s=%s: clear the topics of earlier tests: %v", KafkaBrokersEnv, strings.Join(brokers, ","), err)
	}
	return &Kafka{t: t, external: brokers}
}

// deleteTestTopics deletes every topic that is not Kafka's own and waits
// until the brokers no longer list them.
func deleteTestTopics(brokers []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	for {
		meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl) // no topics: every topic
		if err != nil {
			return err
		}
		del := kmsg.NewPtrDeleteTopicsRequest()
		del.TimeoutMillis = 10_000
		for _, t := range meta.Topics {
			if t.Topic != nil && !strings.HasPrefix(*t.Topic, "__") {
				del.TopicNames = append(del.TopicNames, *t.Topic)
				dt := kmsg.NewDeleteTopicsRequestTopic()
				dt.Topic = t.Topic
				del.Topics = append(del.Topics, dt)
			}
		}
		if len(del.TopicNames) == 0 {
			return nil
		}
		res, err := del.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		for _, t := range res.Topics {
			if err := kerr.ErrorForCode(t.ErrorCode); err != nil && err != kerr.UnknownTopicOrPartition {
				return fmt.Errorf("delete topic %v: %w", t.Topic, err)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond): // deletion is asynchronous: look again
		}
	}
}

// CreateTopic creates topic with partitions partitions (replication
// factor 1), on kfake or the external cluster alike.
func (k *Kafka) CreateTopic(t testing.TB, topic string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10_000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, rt)
	res, err := req.RequestWith(ctx, cl)
	if err == nil && len(res.Topics) == 1 {
		err = kerr.ErrorForCode(res.Topics[0].ErrorCode)
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}
