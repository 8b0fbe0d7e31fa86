package kafkabus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/internal/promshare"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// HeaderDeadLetterID carries a dead letter's id in cdcd's store on the
// dead-letter topic: the same for every copy of the letter.
const HeaderDeadLetterID = "cdcd-dead-letter-id"

// DeadLetterOutbox keeps a pipeline's dead letters until they are on the
// topic (store.DeadLetters from DeadLettersToTopic). PublishDeadLetters
// calls publish with up to limit letters of pipeline that were stored
// (committed) and not yet published, oldest first, and marks them
// published once publish returns nil; it returns how many it published.
type DeadLetterOutbox interface {
	PublishDeadLetters(ctx context.Context, pipeline string, limit int, publish func([]syncstate.DeadLetter) error) (int, error)
}

// DeadLetterTopic publishes a pipeline's dead letters, which its delivery
// stores in cdcd's store, to the Kafka topic <prefix>.dlq.<pipeline>, for
// tools that watch Kafka rather than Postgres.
//
// A letter is published after the transaction that stored it committed
// (within deadLetterPoll), never from inside it: a group of writes whose
// bookkeeping is rolled back and stored again, or a change that fails
// again after a re-send (and so adds its attempts to its open letter),
// publishes its letter once. The one repeat left is a crash, or a lost
// store, between Kafka's acknowledgement and the commit that marks the
// letter published: the next Run publishes it again, with the same
// HeaderDeadLetterID (the letter's id in the store), by which readers
// dedupe.
//
// A letter too large for one Kafka message (the writer's batch or the
// topic's max.message.bytes) goes without its record and event
// ("omitted": true), and if still too large, with its error cut to
// publishedErrorBytes as well; the store keeps them. One too large even
// so (its key alone is) is left off the topic, logged and counted in
// cdcd_kafka_dead_letters_unpublishable_total. No letter holds back the
// ones after it.
type DeadLetterTopic struct {
	outbox   DeadLetterOutbox
	pipeline string
	topic    string
	w        *kafka.Writer
	topics   *Producer // creates the topic; publishes nothing
	ensured  bool
	log      zerolog.Logger

	published     prometheus.Counter
	failures      prometheus.Counter
	unpublishable prometheus.Counter
}

// How the dead-letter topic is fed: letters per message batch, and how
// often the outbox is read.
const (
	deadLetterBatch = 100
	deadLetterPoll  = time.Second
	// publishedErrorBytes is how much of its error a letter too large for
	// one message keeps on the topic, once its record and event are left
	// out: enough to tell what happened; the store has the rest.
	publishedErrorBytes = 1 << 10
	// publishTimeout bounds one attempt at publishing a batch of letters.
	publishTimeout = 30 * time.Second
)

// NewDeadLetterTopic publishes the pipeline's letters from outbox; cfg is
// the bus's Kafka configuration (brokers, prefix, topic creation). It does
// not dial.
func NewDeadLetterTopic(outbox DeadLetterOutbox, cfg Config, pipeline string, log zerolog.Logger, reg prometheus.Registerer) (*DeadLetterTopic, error) {
	p, err := New(cfg, log, nil)
	if err != nil {
		return nil, err
	}
	published := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cdcd_kafka_dead_letters_published_total", Help: "Dead letters published to their pipeline's dead-letter topic, by pipeline.",
	}, []string{"pipeline"})
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cdcd_kafka_dead_letter_publish_errors_total", Help: "Failed attempts to publish stored dead letters to their topic (retried), by pipeline.",
	}, []string{"pipeline"})
	unpublishable := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cdcd_kafka_dead_letters_unpublishable_total", Help: "Dead letters left off their pipeline's dead-letter topic because even their smallest form is too large for one message (kept in the store), by pipeline.",
	}, []string{"pipeline"})
	if reg != nil {
		// Every pipeline's topic shares these collectors.
		if published, err = promshare.Register(reg, published); err != nil {
			return nil, err
		}
		if failures, err = promshare.Register(reg, failures); err != nil {
			return nil, err
		}
		if unpublishable, err = promshare.Register(reg, unpublishable); err != nil {
			return nil, err
		}
	}
	return &DeadLetterTopic{
		outbox:        outbox,
		pipeline:      pipeline,
		topic:         TopicName(p.cfg.TopicPrefix, "dlq", pipeline),
		topics:        p,
		log:           log.With().Str("component", "kafkabus").Str("pipeline", pipeline).Logger(),
		published:     published.WithLabelValues(pipeline),
		failures:      failures.WithLabelValues(pipeline),
		unpublishable: unpublishable.WithLabelValues(pipeline),
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

// Run publishes the letters stored for the pipeline until ctx ends,
// looking for new ones every deadLetterPoll. A failure is logged and
// retried with backoff; the letters wait in the store meanwhile.
func (d *DeadLetterTopic) Run(ctx context.Context) error {
	backoff := cdc.Backoff{Min: deadLetterPoll, Max: 30 * time.Second}
	for {
		n, err := d.publish(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := deadLetterPoll
		switch {
		case err != nil:
			d.failures.Inc()
			wait = backoff.Next()
			d.log.Warn().Err(err).Float64("retry_in_seconds", wait.Seconds()).Msg("dead letters not published; retrying")
		case n == deadLetterBatch:
			continue // more are waiting
		default:
			backoff.Reset()
		}
		if !cdc.Sleep(ctx, wait) {
			return nil
		}
	}
}

// publish publishes up to deadLetterBatch letters waiting in the outbox.
func (d *DeadLetterTopic) publish(ctx context.Context) (int, error) {
	if !d.ensured {
		if err := d.topics.EnsureTopics(ctx, []string{d.topic}); err != nil {
			return 0, fmt.Errorf("dead-letter topic: %w", err)
		}
		d.ensured = true
	}
	// The outbox holds the letters' rows locked in a transaction while
	// they are published: a broker that does not answer ends the attempt
	// (the transaction rolls back, the next attempt comes after the
	// backoff) instead of keeping the transaction open through the
	// writer's own retries.
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	n, err := d.outbox.PublishDeadLetters(ctx, d.pipeline, deadLetterBatch, func(letters []syncstate.DeadLetter) error {
		msgs := make([]kafka.Message, len(letters))
		for i, l := range letters {
			m, err := deadLetterMessageOf(d.topic, l, wholeLetter)
			if err != nil {
				return err
			}
			msgs[i] = m
		}
		err := d.w.WriteMessages(ctx, msgs...)
		if tooLarge(err) {
			err = d.publishApart(ctx, letters, msgs)
		}
		if err != nil {
			return fmt.Errorf("publish %d dead letters to %s: %w", len(msgs), d.topic, err)
		}
		return nil
	})
	d.published.Add(float64(n))
	return n, err
}

// publishApart publishes the letters one at a time, after their batch was
// too large for Kafka, each in the largest of its forms that Kafka takes;
// one that fits in none is left out (see DeadLetterTopic). Letters of the
// batch that Kafka took before it failed are published again, with the
// same id.
func (d *DeadLetterTopic) publishApart(ctx context.Context, letters []syncstate.DeadLetter, msgs []kafka.Message) error {
	for i, l := range letters {
		m, form := msgs[i], wholeLetter
		for {
			err := d.w.WriteMessages(ctx, m)
			if err == nil {
				break
			}
			if !tooLarge(err) {
				return fmt.Errorf("dead letter %d: %w", l.ID, err)
			}
			if form == smallestLetter {
				d.unpublishable.Inc()
				d.log.Error().Int64("dead_letter_id", l.ID).Int("bytes", len(m.Key)+len(m.Value)).
					Msg("dead letter too large for its topic even without its record, event and most of its error; left off the topic, kept in the store")
				break
			}
			form++
			d.log.Warn().Int64("dead_letter_id", l.ID).Int("bytes", len(m.Key)+len(m.Value)).Stringer("next_form", form).
				Msg("dead letter too large for its topic; publishing less of it")
			if m, err = deadLetterMessageOf(d.topic, l, form); err != nil {
				return err
			}
		}
	}
	return nil
}

// tooLarge says whether err is a message too large for the writer's batch
// or the topic's max.message.bytes (for any of the messages written).
func tooLarge(err error) bool {
	var client kafka.MessageTooLargeError
	if errors.Is(err, kafka.MessageSizeTooLarge) || errors.As(err, &client) {
		return true
	}
	var each kafka.WriteErrors
	if errors.As(err, &each) {
		for _, err := range each {
			if err != nil && tooLarge(err) {
				return true
			}
		}
	}
	return false
}

// letterForm is how much of a dead letter its message carries.
type letterForm int

const (
	wholeLetter    letterForm = iota // everything; the error as the store keeps it
	withoutRecord                    // no record or event (Omitted)
	smallestLetter                   // no record or event, the error cut to publishedErrorBytes
)

func (f letterForm) String() string {
	return [...]string{"whole", "without_record", "error_cut"}[f]
}

// deadLetterMessage is the JSON value of a dead letter on the topic.
type deadLetterMessage struct {
	ID       int64           `json:"id"`
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
	// Omitted says Record and Event were left out: with them the letter
	// was larger than Kafka takes in one message. They are in the store,
	// and so is the whole of an Error that ends "… [cut: N bytes in all]"
	// (up to syncstate.MaxErrorBytes of it).
	Omitted bool `json:"omitted,omitempty"`
}

// deadLetterMessageOf is the message of l, in form, on topic.
func deadLetterMessageOf(topic string, l syncstate.DeadLetter, form letterForm) (kafka.Message, error) {
	v := deadLetterMessage{
		ID: l.ID, Pipeline: l.Pipeline, System: l.System, Object: l.Object, Table: l.Table, Key: l.Key,
		EventID: l.EventID, Op: cdc.Op(l.Op).String(), Error: syncstate.CutError(l.Error, syncstate.MaxErrorBytes),
		Attempts: l.Attempts, FailedAt: l.FailedAt, Record: l.Record, Event: l.Event,
	}
	if form >= withoutRecord {
		v.Record, v.Event, v.Omitted = nil, nil, true
	}
	if form >= smallestLetter {
		v.Error = syncstate.CutError(v.Error, publishedErrorBytes)
	}
	value, err := json.Marshal(v)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode dead letter %d: %w", l.ID, err)
	}
	return kafka.Message{Topic: topic, Key: []byte(l.Key), Value: value, Headers: []kafka.Header{
		{Key: HeaderDeadLetterID, Value: strconv.AppendInt(nil, l.ID, 10)},
		{Key: HeaderEventID, Value: []byte(l.EventID)},
	}}, nil
}

// Close releases the Kafka connections.
func (d *DeadLetterTopic) Close(ctx context.Context) error {
	err := d.w.Close()
	if cerr := d.topics.Close(ctx); err == nil {
		err = cerr
	}
	return err
}
