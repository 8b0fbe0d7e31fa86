package cdctest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func produce(t *testing.T, brokers []string, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func TestKafkaReadTopicAcrossRestart(t *testing.T) {
	t.Parallel()
	k := StartKafka(t, kfake.SeedTopics(3, "t"))
	brokers := k.Brokers()
	if n := TopicPartitions(t, brokers, "t"); n != 3 {
		t.Fatalf("partitions of t = %d, want 3", n)
	}
	if n := TopicPartitions(t, brokers, "missing"); n != 0 {
		t.Fatalf("partitions of a missing topic = %d, want 0", n)
	}

	var sent []*kgo.Record
	for i := range 30 {
		sent = append(sent, &kgo.Record{
			Topic: "t", Partition: int32(i % 3),
			Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i),
			Headers: []kgo.RecordHeader{{Key: "h", Value: fmt.Appendf(nil, "%d", i)}},
		})
	}
	produce(t, brokers, sent[:20]...)

	k.Stop()
	if k.Cluster() != nil {
		t.Fatal("Cluster() is not nil while stopped")
	}
	k.Restart()
	if got := k.Brokers(); fmt.Sprint(got) != fmt.Sprint(brokers) {
		t.Fatalf("brokers changed across restart: %v, then %v", brokers, got)
	}
	produce(t, brokers, sent[20:]...)

	recs := ReadTopic(t, brokers, "t")
	if len(recs) != 30 {
		t.Fatalf("read %d records, want 30", len(recs))
	}
	perPartition := map[int32]int64{}
	for _, r := range recs {
		if r.Offset != perPartition[r.Partition] {
			t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, perPartition[r.Partition])
		}
		perPartition[r.Partition]++
		var i int
		if _, err := fmt.Sscanf(string(r.Key), "k%d", &i); err != nil {
			t.Fatalf("key %q: %v", r.Key, err)
		}
		h, ok := r.Header("h")
		if int32(i%3) != r.Partition || string(r.Value) != fmt.Sprintf("v%d", i) || !ok || h != fmt.Sprint(i) {
			t.Fatalf("record %+v does not match what was sent as #%d", r, i)
		}
	}
}

func TestKafkaAutoTopicCreation(t *testing.T) {
	t.Parallel()
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprint("allow=", allow), func(t *testing.T) {
			t.Parallel()
			var opts []kfake.Opt
			if allow {
				opts = append(opts, kfake.AllowAutoTopicCreation())
			}
			k := StartKafka(t, opts...)
			cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers()...), kgo.AllowAutoTopicCreation(),
				kgo.RecordDeliveryTimeout(2*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			err = cl.ProduceSync(context.Background(), &kgo.Record{Topic: "auto", Value: []byte("x")}).FirstErr()
			if allow != (err == nil) {
				t.Fatalf("produce to a new topic with auto creation %v: err = %v", allow, err)
			}
			if n := TopicPartitions(t, k.Brokers(), "auto"); allow != (n > 0) {
				t.Fatalf("topic exists = %v, want %v", n > 0, allow)
			}
		})
	}
}
