package kafkabus

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// Regression: a consumer started before its topic existed (cdcd run
// --role sinks, or --role all, on a fresh cluster, where the producer
// creates topics on first publish) joined its group, was assigned no
// partitions and was never rebalanced, so it delivered nothing until
// restarted.
func TestConsumerStartedBeforeItsTopicExistsDeliversOnceCreated(t *testing.T) {
	k := cdctest.StartKafka(t, kfake.NumBrokers(1))
	const topic = "cdcd.public.t"
	var asked atomic.Bool // the consumer looked the topic up while it did not exist
	c := k.Cluster()
	c.ControlKey(kmsg.Metadata.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		m := req.(*kmsg.MetadataRequest)
		if len(m.Topics) == 0 { // every topic
			asked.Store(true)
		}
		for _, t := range m.Topics {
			if t.Topic != nil && *t.Topic == topic {
				asked.Store(true)
			}
		}
		return nil, nil, false
	})
	sink := &gateSink{}
	runConsumer(t, ConsumerConfig{Brokers: k.Brokers(), Group: "cdcd.early", Topics: []string{topic}, System: "erp"}, sink)
	cdctest.Eventually(t, 30*time.Second, "the consumer to look its topic up", asked.Load)

	publishN(t, k.Brokers(), 0, 10, "")
	cdctest.Eventually(t, 30*time.Second, "the 10 events published after the consumer started", func() bool {
		return len(sink.snapshot()) == 10
	})
}
