package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/segmentio/kafka-go"
	metadataapi "github.com/segmentio/kafka-go/protocol/metadata"
)

// TopicName is the topic of a table's events: <prefix>.<schema>.<table>,
// with every character Kafka does not allow in topic names replaced by '_'
// (as Debezium does), so distinct tables can share a topic only when their
// names differ in such characters alone.
func TopicName(prefix, schema, table string) string {
	var b strings.Builder
	b.Grow(len(prefix) + len(schema) + len(table) + 2)
	for _, part := range [...]string{prefix, ".", schema, ".", table} {
		for i := 0; i < len(part); i++ {
			if c := part[i]; topicChar(c) {
				b.WriteByte(c)
			} else {
				b.WriteByte('_')
			}
		}
	}
	return b.String()
}

type table struct{ schema, name string }

// topics maps tables to topic names and remembers which topics are known
// to exist.
type topics struct {
	prefix string

	mu    sync.RWMutex
	names map[table]string
	known map[string]bool
}

func newTopics(prefix string) *topics {
	return &topics{prefix: prefix, names: map[table]string{}, known: map[string]bool{}}
}

// lookup returns the topic of schema.name and whether it is known to exist.
func (t *topics) lookup(schema, name string) (string, bool) {
	t.mu.RLock()
	topic, ok := t.names[table{schema, name}]
	known := t.known[topic]
	t.mu.RUnlock()
	if ok {
		return topic, known
	}
	topic = TopicName(t.prefix, schema, name)
	t.mu.Lock()
	t.names[table{schema, name}] = topic
	known = t.known[topic]
	t.mu.Unlock()
	return topic, known
}

func (t *topics) unknown(names []string) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []string
	for _, n := range names {
		if !t.known[n] && !contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func (t *topics) markKnown(names []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range names {
		t.known[n] = true
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// EnsureTopics makes sure the topics exist before messages are written to
// them. With Config.CreateTopics it creates the missing ones with
// Config.Partitions and Config.ReplicationFactor (a topic that already
// exists is left as it is); without it a missing topic is an error. Topics
// once ensured are remembered, so Publish checks each topic once.
func (p *Producer) EnsureTopics(ctx context.Context, names []string) error {
	missing := p.topics.unknown(names)
	if len(missing) == 0 {
		return nil
	}
	for _, n := range missing {
		if !ValidTopic(n) {
			return fmt.Errorf("topic %q is not a valid Kafka topic name (at most %d of [a-zA-Z0-9._-])", n, MaxTopicLen)
		}
	}
	if p.cfg.CreateTopics {
		if err := p.createTopics(ctx, missing); err != nil {
			return err
		}
	}
	// A metadata request that allows auto creation makes the transport
	// fetch topics its cache lacks (ones created elsewhere, or reported as
	// already existing) rather than answer from the cache.
	res, err := p.transport.RoundTrip(ctx, p.addr, &metadataapi.Request{TopicNames: missing, AllowAutoTopicCreation: true})
	if err != nil {
		return fmt.Errorf("metadata of topics %q: %w", missing, err)
	}
	var errs []error
	for _, t := range res.(*metadataapi.Response).Topics {
		if t.ErrorCode == 0 {
			continue
		}
		err := kafka.Error(t.ErrorCode)
		if errors.Is(err, kafka.UnknownTopicOrPartition) && !p.cfg.CreateTopics {
			errs = append(errs, fmt.Errorf("topic %q does not exist; create it or set kafka.create_topics: true", t.Name))
		} else {
			errs = append(errs, fmt.Errorf("metadata of topic %q: %w", t.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	p.topics.markKnown(missing)
	return nil
}

func (p *Producer) createTopics(ctx context.Context, names []string) error {
	req := &kafka.CreateTopicsRequest{Addr: p.addr}
	for _, n := range names {
		req.Topics = append(req.Topics, kafka.TopicConfig{
			Topic:             n,
			NumPartitions:     p.cfg.Partitions,
			ReplicationFactor: p.cfg.ReplicationFactor,
		})
	}
	client := &kafka.Client{Addr: p.addr, Transport: p.transport}
	res, err := client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics %q: %w", names, err)
	}
	var errs []error
	for _, n := range names {
		switch err := res.Errors[n]; {
		case err == nil:
			p.log.Info().Str("topic", n).Int("partitions", p.cfg.Partitions).
				Int("replication_factor", p.cfg.ReplicationFactor).Msg("topic created")
		case errors.Is(err, kafka.TopicAlreadyExists):
		default:
			errs = append(errs, fmt.Errorf("create topic %q: %w", n, err))
		}
	}
	return errors.Join(errs...)
}
