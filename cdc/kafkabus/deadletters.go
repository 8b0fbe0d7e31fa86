package kafkabus

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// DeadLetterTopic keeps a pipeline's dead letters in the store and also
// publishes each to the Kafka topic <prefix>.dlq.<pipeline>, for tools that
// watch Kafka rather than Postgres. A letter is written to Kafka (acks=all)
// before the store: if the store then fails, the retry can duplicate the
// Kafka message (same cdcd-event-id header) but never the stored letter.
type DeadLetterTopic struct {
	syncstate.DeadLetters
	topic   string
	w       *kafka.Writer
	topics  *Producer // creates the topic; publishes nothing
	ensured atomic.Bool
}

// NewDeadLetterTopic wraps store for the pipeline; cfg is the bus's Kafka
// configuration (brokers, prefix, topic creation). It does not dial.
func NewDeadLetterTopic(store syncstate.DeadLetters, cfg Config, pipeline string, log zerolog.Logger) (*DeadLetterTopic, error) {
	p, err := New(cfg, log, nil)
	if err != nil {
		return nil, err
	}
	return &DeadLetterTopic{
		DeadLetters: store,
		topic:       TopicName(p.cfg.TopicPrefix, "dlq", pipeline),
		topics:      p,
		w: &kafka.Writer{
			Addr:         p.addr,
			Transport:    p.transport,
			Balancer:     &kafka.Murmur2Balancer{Consistent: true},
			RequiredAcks: kafka.RequireAll,
			BatchTimeout: time.Millisecond,
		},
	}, nil
}

// Topic is where the dead letters go.
func (d *DeadLetterTopic) Topic() string { return d.topic }

// deadLetterMessage is the JSON value of a dead letter on the topic.
type deadLetterMessage struct {
	Pipeline string          `json:"pipeline"`
	System   string          `json:"system"`
	Object   string          `json:"object"`
	Table    string          `json:"table"`
	Key      string          `json:"key"`
	EventID  string          `json:"event_id"`
	Op       string          `json:"op"`
	Error    string          `json:"error"`
	Attempts int             `json:"attempts"`
	FailedAt time.Time       `json:"failed_at"`
	Record   json.RawMessage `json:"record,omitempty"`
	Event    json.RawMessage `json:"event,omitempty"`
}

// Put publishes the letters, then stores them.
func (d *DeadLetterTopic) Put(ctx context.Context, letters []syncstate.DeadLetter) error {
	if len(letters) == 0 {
		return nil
	}
	if !d.ensured.Load() {
		if err := d.topics.EnsureTopics(ctx, []string{d.topic}); err != nil {
			return fmt.Errorf("dead-letter topic: %w", err)
		}
		d.ensured.Store(true)
	}
	msgs := make([]kafka.Message, len(letters))
	for i, l := range letters {
		value, err := json.Marshal(deadLetterMessage{
			Pipeline: l.Pipeline, System: l.System, Object: l.Object, Table: l.Table, Key: l.Key,
			EventID: l.EventID, Op: cdc.Op(l.Op).String(), Error: l.Error, Attempts: l.Attempts,
			FailedAt: l.FailedAt, Record: l.Record, Event: l.Event,
		})
		if err != nil {
			return fmt.Errorf("encode dead letter %s: %w", l.EventID, err)
		}
		msgs[i] = kafka.Message{Topic: d.topic, Key: []byte(l.Key), Value: value,
			Headers: []kafka.Header{{Key: HeaderEventID, Value: []byte(l.EventID)}}}
	}
	if err := d.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("publish %d dead letters to %s: %w", len(msgs), d.topic, err)
	}
	return d.DeadLetters.Put(ctx, letters)
}

// Close releases the Kafka connections.
func (d *DeadLetterTopic) Close(ctx context.Context) error {
	err := d.w.Close()
	if cerr := d.topics.Close(ctx); err == nil {
		err = cerr
	}
	return err
}
