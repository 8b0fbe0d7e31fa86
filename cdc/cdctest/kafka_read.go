package cdctest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// readTimeout bounds ReadTopic and TopicPartitions.
const readTimeout = 30 * time.Second

// Record is one Kafka record as a consumer sees it.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte // nil for a null key
	Value     []byte
	Headers   []RecordHeader
}

// RecordHeader is one record header.
type RecordHeader struct {
	Key   string
	Value []byte
}

// Header returns the value of the first header named key.
func (r *Record) Header(key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// TopicPartitions returns the number of partitions of topic, or 0 if it
// does not exist.
func TopicPartitions(t testing.TB, brokers []string, topic string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	cl := newKafkaClient(t, brokers)
	defer cl.Close()
	parts, err := partitionsOf(ctx, cl, topic)
	if err != nil {
		t.Fatalf("metadata of topic %q: %v", topic, err)
	}
	return len(parts)
}

// ReadTopic returns every record of topic up to the high watermark each
// partition had when it was called, ordered by partition and offset. It
// fails the test if the topic does not exist or cannot be read within 30s.
func ReadTopic(t testing.TB, brokers []string, topic string) []Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	cl := newKafkaClient(t, brokers)
	defer cl.Close()

	parts, err := partitionsOf(ctx, cl, topic)
	if err != nil {
		t.Fatalf("metadata of topic %q: %v", topic, err)
	}
	if len(parts) == 0 {
		t.Fatalf("read topic %q: it does not exist", topic)
	}
	ends, err := highWatermarks(ctx, cl, topic, parts)
	if err != nil {
		t.Fatalf("high watermarks of topic %q: %v", topic, err)
	}

	next := make(map[int32]int64, len(parts)) // partitions still to read
	start := make(map[int32]kgo.Offset, len(parts))
	for _, p := range parts {
		if ends[p] > 0 {
			next[p] = 0
			start[p] = kgo.NewOffset().AtStart()
		}
	}
	var recs []Record
	if len(next) == 0 {
		return recs
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: start})
	for len(next) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read topic %q: %d partitions short of their high watermark after %v", topic, len(next), readTimeout)
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("read topic %q partition %d: %v", topic, fe.Partition, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if _, ok := next[r.Partition]; !ok || r.Offset >= ends[r.Partition] {
				return
			}
			rec := Record{
				Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
				Key: r.Key, Value: r.Value,
			}
			for _, h := range r.Headers {
				rec.Headers = append(rec.Headers, RecordHeader{Key: h.Key, Value: h.Value})
			}
			recs = append(recs, rec)
			if r.Offset+1 >= ends[r.Partition] {
				delete(next, r.Partition)
			} else {
				next[r.Partition] = r.Offset + 1
			}
		})
	}
	slices.SortFunc(recs, func(a, b Record) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	return recs
}

func newKafkaClient(t testing.TB, brokers []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	return cl
}

// partitionsOf returns the partition ids of topic, none if it does not
// exist.
func partitionsOf(ctx context.Context, cl *kgo.Client, topic string) ([]int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	for _, mt := range resp.Topics {
		if mt.Topic == nil || *mt.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(mt.ErrorCode); err == kerr.UnknownTopicOrPartition {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
		parts := make([]int32, 0, len(mt.Partitions))
		for _, p := range mt.Partitions {
			parts = append(parts, p.Partition)
		}
		slices.Sort(parts)
		return parts, nil
	}
	return nil, nil
}

// highWatermarks returns each partition's next offset.
func highWatermarks(ctx context.Context, cl *kgo.Client, topic string, parts []int32) (map[int32]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for _, p := range parts {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = -1 // latest
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	ends := make(map[int32]int64, len(parts))
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, err
			}
			ends[p.Partition] = p.Offset
		}
	}
	return ends, nil
}
