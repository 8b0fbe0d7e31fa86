package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/cdcd-dev/cdcd/cdc"
)

// ErrClosed is returned by Publish after Close; the events were not taken.
var ErrClosed = errors.New("kafka producer is closed")

// Producer publishes events to Kafka. It implements cdc.Publisher; see the
// package documentation for its ordering and acknowledgement guarantees.
type Producer struct {
	cfg       Config
	log       zerolog.Logger
	m         *metrics
	addr      net.Addr
	transport *kafka.Transport
	w         *kafka.Writer
	topics    *topics
	budget    *budget
	scratch   sync.Pool
	epoch     time.Time
	schemas   schemaCache

	closeOnce sync.Once
	closed    atomic.Bool
	done      chan struct{} // closed once the writer has flushed and stopped
}

var _ cdc.Publisher = (*Producer)(nil)

// New validates cfg and allocates a Producer. It does not connect: the
// first EnsureTopics or Publish does. Metrics are registered on reg when it
// is not nil.
func New(cfg Config, log zerolog.Logger, reg prometheus.Registerer) (*Producer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	p := &Producer{
		cfg:       cfg,
		log:       log.With().Str("component", "kafkabus").Logger(),
		m:         m,
		addr:      newBrokerAddr(cfg.Brokers),
		transport: &kafka.Transport{ClientID: cfg.ClientID},
		topics:    newTopics(cfg.TopicPrefix),
		budget:    newBudget(int64(cfg.BufferEvents), int64(cfg.BufferBytes)),
		epoch:     time.Now(),
		done:      make(chan struct{}),
	}
	p.w = &kafka.Writer{
		Addr:         p.addr,
		Transport:    p.transport,
		Balancer:     &kafka.Murmur2Balancer{Consistent: true},
		MaxAttempts:  cfg.MaxAttempts,
		BatchSize:    cfg.BatchSize,
		BatchBytes:   int64(cfg.BatchBytes),
		BatchTimeout: cfg.Linger,
		RequiredAcks: kafka.RequireAll,
		Compression:  compressions[cfg.Compression],
		Async:        true,
		Completion:   p.complete,
		ErrorLogger:  kafka.LoggerFunc(p.logWriterError),
	}
	return p, nil
}

// Publish encodes the events and hands them to the writer, blocking until
// the buffer has room for all of them. It returns ctx.Err() if ctx ends
// first, or ErrClosed after Close, having taken none of the events.
//
// When the events cannot be handed to Kafka at all (a topic is missing and
// cannot be created, a message exceeds BatchBytes), Publish nacks every one
// of them with the error and returns it; the caller must not settle them
// again. Otherwise each event's Ack is settled once Kafka acknowledged or
// failed its batch.
//
// Calls may be concurrent, but events of one key keep their order only
// across calls made one after another.
func (p *Producer) Publish(ctx context.Context, events []cdc.Event) error {
	if len(events) == 0 {
		return nil
	}
	if p.closed.Load() {
		return ErrClosed
	}
	s := p.getScratch()
	defer p.putScratch(s)
	size := p.encode(s, events)

	if len(s.unknown) > 0 {
		if err := p.EnsureTopics(ctx, s.unknown); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return nackAll(events, err)
		}
	}

	n := int64(len(s.msgs))
	if _, err := p.budget.acquire(ctx, n, size); err != nil {
		return err
	}
	p.m.buffered.Add(float64(n))
	at := int64(time.Since(p.epoch))
	for i := range s.msgs {
		s.msgs[i].WriterData.(*entry).at = at
	}

	err := p.w.WriteMessages(ctx, s.msgs...)
	if err == nil {
		return nil
	}
	// The writer takes all the messages or, on error, none of them.
	p.budget.release(n, size)
	p.m.buffered.Sub(float64(n))
	var tooLarge kafka.MessageTooLargeError
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, io.ErrClosedPipe):
		return ErrClosed
	case errors.As(err, &tooLarge):
		hdrs := tooLarge.Message.Headers
		return nackAll(events, fmt.Errorf("event %s is larger than kafka.batch_bytes (%d); raise batch_bytes and the topic's max.message.bytes",
			hdrs[0].Value, p.cfg.BatchBytes))
	default:
		return nackAll(events, fmt.Errorf("hand events to kafka: %w", err))
	}
}

func nackAll(events []cdc.Event, err error) error {
	for i := range events {
		events[i].Settle(err)
	}
	return err
}

// ackerN is implemented by ackers that settle several events at once, like
// *cdc.Txn. Implementations must be comparable: consecutive messages with
// equal ackers are settled with one call.
type ackerN interface {
	AckN(n int, err error)
}

// complete is the writer's Completion callback, called once per batch from
// the goroutine of the batch's partition.
func (p *Producer) complete(msgs []kafka.Message, err error) {
	if len(msgs) == 0 {
		return
	}
	first := msgs[0].WriterData.(*entry)
	p.m.produceSeconds.Observe(time.Duration(int64(time.Since(p.epoch)) - first.at).Seconds())

	var size int64
	var run cdc.Acker
	runLen := 0
	for i := range msgs {
		e := msgs[i].WriterData.(*entry)
		size += e.size
		if runLen > 0 && !sameAcker(run, e.ack) {
			settle(run, runLen, err)
			runLen = 0
		}
		run = e.ack
		runLen++
	}
	settle(run, runLen, err)

	n := int64(len(msgs))
	p.budget.release(n, size)
	p.m.buffered.Sub(float64(n))
	if err != nil {
		p.m.errors.Inc()
		p.log.Warn().Err(err).Str("topic", msgs[0].Topic).Int("messages", len(msgs)).Msg("produce batch failed; its events were nacked")
		return
	}
	p.m.messages.Add(float64(n))
}

func sameAcker(a, b cdc.Acker) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if _, ok := a.(ackerN); !ok {
		return false
	}
	return a == b
}

func settle(a cdc.Acker, n int, err error) {
	switch {
	case a == nil || n == 0:
	case n > 1:
		if an, ok := a.(ackerN); ok {
			an.AckN(n, err)
			return
		}
		for range n {
			a.Ack(err)
		}
	default:
		a.Ack(err)
	}
}

// Close stops taking events, flushes what was handed over and waits until
// Kafka acknowledged or failed all of it, or until ctx ends. Events still
// unsettled when ctx ends are settled later by the writer's retries; Close
// may be called again to keep waiting.
func (p *Producer) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		go func() {
			defer close(p.done)
			p.w.Close() // never fails: it waits for every batch to complete
			p.transport.CloseIdleConnections()
		}()
	})
	select {
	case <-p.done:
		p.log.Info().Msg("kafka producer closed")
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close kafka producer with %d events unsettled: %w", p.budget.inFlight(), ctx.Err())
	}
}

// brokerAddr is kafka.TCP(brokers...) with its comma-joined forms computed
// once: the transport derives its pool key from them on every metadata
// lookup, and the writer looks metadata up for every message.
type brokerAddr struct{ network, address string }

func newBrokerAddr(brokers []string) net.Addr {
	a := kafka.TCP(brokers...)
	return &brokerAddr{network: a.Network(), address: a.String()}
}

func (a *brokerAddr) Network() string { return a.network }
func (a *brokerAddr) String() string  { return a.address }

func (p *Producer) logWriterError(msg string, args ...any) {
	if e := p.log.Debug(); e.Enabled() {
		e.Str("detail", fmt.Sprintf(msg, args...)).Msg("kafka writer error")
	}
}
