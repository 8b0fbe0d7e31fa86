// Package kafka forwards records to a topic of an external Kafka cluster
// with acks=all. The message key is the record's Key, so one record's
// changes land on one partition in order; every message carries the
// header cdcd-event-id, by which a consumer recognises a message sent
// again after an unknown outcome.
package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// maxBatch is the most records one Write sends.
const maxBatch = 500

// EventIDHeader is the header that carries the event id.
const EventIDHeader = "cdcd-event-id"

// Writer produces records to the topic. It implements syncapi.Writer and
// syncapi.Batcher. Close releases its connections.
type Writer struct {
	cfg Config
	src cdc.SourceInfo
	w   *kafkago.Writer
	log zerolog.Logger
	now func() time.Time
}

var (
	_ syncapi.Writer  = (*Writer)(nil)
	_ syncapi.Batcher = (*Writer)(nil)
)

// New validates cfg and returns a writer; envelopes take their source
// block from env.Source. It does not connect.
func New(name string, cfg *Config, env config.Env) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Writer{
		cfg: *cfg,
		src: env.Source,
		log: env.Log,
		now: time.Now,
		w: &kafkago.Writer{
			Addr:         kafkago.TCP(cfg.Brokers...),
			Topic:        cfg.Topic,
			Transport:    &kafkago.Transport{ClientID: cfg.ClientID},
			Balancer:     &kafkago.Murmur2Balancer{Consistent: true},
			RequiredAcks: kafkago.RequireAll,
			MaxAttempts:  1, // package delivery retries
			BatchSize:    maxBatch,
			BatchTimeout: 5 * time.Millisecond,
		},
	}, nil
}

// MaxBatch is the most records one Write takes.
func (w *Writer) MaxBatch() int { return maxBatch }

// Write produces one message per record and returns once Kafka has
// acknowledged each or failed it. A record that cannot be encoded, a
// message over the broker's size limit and non-retriable Kafka errors are
// permanent; everything else is retried.
func (w *Writer) Write(ctx context.Context, records []syncapi.Record) ([]syncapi.Result, error) {
	results := make([]syncapi.Result, len(records))
	msgs := make([]kafkago.Message, 0, len(records))
	index := make([]int, 0, len(records)) // message -> record
	now := w.now()
	for i := range records {
		m, err := w.message(&records[i], now)
		if err != nil {
			results[i].Err = cdc.Permanent(err)
			continue
		}
		msgs = append(msgs, m)
		index = append(index, i)
	}
	if len(msgs) == 0 {
		return results, nil
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	err := w.w.WriteMessages(ctx, msgs...)
	if err == nil {
		return results, nil
	}
	var perMessage kafkago.WriteErrors
	if !errors.As(err, &perMessage) || len(perMessage) != len(msgs) {
		return nil, classify(fmt.Errorf("produce to kafka topic %s: %w", w.cfg.Topic, err))
	}
	for j, merr := range perMessage {
		if merr != nil {
			results[index[j]].Err = classify(fmt.Errorf("produce to kafka topic %s: %w", w.cfg.Topic, merr))
		}
	}
	return results, nil
}

// Close flushes nothing (Write is synchronous) and closes connections.
func (w *Writer) Close() error { return w.w.Close() }

func (w *Writer) message(r *syncapi.Record, now time.Time) (kafkago.Message, error) {
	m := kafkago.Message{}
	if r.Key != "" {
		m.Key = []byte(r.Key)
	}
	eventID := ""
	if r.Event != nil {
		eventID = r.Event.ID()
	}
	m.Headers = []kafkago.Header{{Key: EventIDHeader, Value: []byte(eventID)}}
	switch {
	case w.cfg.Value == ValueEnvelope:
		if r.Event == nil {
			return m, fmt.Errorf("record has no event to send as an envelope")
		}
		m.Value = cdc.AppendEnvelope(nil, r.Event, &w.src, now)
	case r.Op == cdc.OpDelete:
		// A tombstone.
	default:
		v, err := json.Marshal(r.Fields)
		if err != nil {
			return m, fmt.Errorf("encode fields as JSON: %w", err)
		}
		m.Value = v
	}
	return m, nil
}

// classify marks errors that retrying cannot fix.
func classify(err error) error {
	var tooLarge kafkago.MessageTooLargeError
	var kerr kafkago.Error
	switch {
	case errors.As(err, &tooLarge):
		return cdc.Permanent(err)
	case errors.As(err, &kerr) && !kerr.Temporary():
		return cdc.Permanent(err)
	}
	return err
}
