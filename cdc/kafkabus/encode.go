package kafkabus

import (
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cdcd-dev/cdcd/cdc"
)

// Header names on every message.
const (
	// HeaderEventID carries Event.ID, for idempotent consumers.
	HeaderEventID = "cdcd-event-id"
	// HeaderOrigin carries Event.Origin when it is set.
	HeaderOrigin = "cdcd-origin"
)

// entry is what a message carries through the writer (Message.WriterData)
// to be settled on completion.
type entry struct {
	ack  cdc.Acker
	size int64 // bytes counted against the buffer
	at   int64 // when it was handed over, nanoseconds since Producer.epoch
}

// scratch is reusable memory for one Publish call: the writer copies the
// Message values, so only the encoded bytes must outlive the call.
type scratch struct {
	buf     []byte
	ends    []int
	msgs    []kafka.Message
	unknown []string
}

// maxScratch is the largest encoding buffer kept for reuse.
const maxScratch = 4 << 20

func (p *Producer) getScratch() *scratch {
	if s, ok := p.scratch.Get().(*scratch); ok {
		return s
	}
	return new(scratch)
}

func (p *Producer) putScratch(s *scratch) {
	clear(s.msgs) // drop references to the encoded bytes and acks
	clear(s.unknown)
	if cap(s.buf) > maxScratch {
		s.buf = nil
	}
	s.buf, s.ends, s.msgs, s.unknown = s.buf[:0], s.ends[:0], s.msgs[:0], s.unknown[:0]
	p.scratch.Put(s)
}

// encode fills s.msgs with one message per event. The keys, values and
// header values share one allocation sized to fit, and entries receives
// each message's WriterData. It collects in s.unknown the topics not yet
// known to exist and returns the bytes encoded.
func (p *Producer) encode(s *scratch, events []cdc.Event, entries []entry) int64 {
	now := time.Now()
	buf, ends := s.buf[:0], s.ends[:0]
	var lastSchema, lastTable, topic string
	headers := 0
	s.msgs = s.msgs[:0]
	for i := range events {
		e := &events[i]
		if i == 0 || e.Schema != lastSchema || e.Table != lastTable {
			var known bool
			topic, known = p.topics.lookup(e.Schema, e.Table)
			if !known && !contains(s.unknown, topic) {
				s.unknown = append(s.unknown, topic)
			}
			lastSchema, lastTable = e.Schema, e.Table
		}
		if e.Key != nil {
			buf = cdc.AppendKey(buf, e)
		}
		ends = append(ends, len(buf))
		buf = cdc.AppendEnvelope(buf, e, &p.cfg.Source, now)
		ends = append(ends, len(buf))
		buf = appendEventID(buf, e)
		ends = append(ends, len(buf))
		headers++
		if e.Origin != "" {
			buf = append(buf, e.Origin...)
			headers++
		}
		ends = append(ends, len(buf))
		s.msgs = append(s.msgs, kafka.Message{Topic: topic})
	}
	s.buf, s.ends = buf, ends

	arena := make([]byte, len(buf))
	copy(arena, buf)
	hdrs := make([]kafka.Header, 0, headers)
	start := 0
	for i := range s.msgs {
		m := &s.msgs[i]
		keyEnd, valEnd, idEnd, end := ends[4*i], ends[4*i+1], ends[4*i+2], ends[4*i+3]
		if events[i].Key != nil {
			m.Key = arena[start:keyEnd:keyEnd]
		}
		m.Value = arena[keyEnd:valEnd:valEnd]
		h := len(hdrs)
		hdrs = append(hdrs, kafka.Header{Key: HeaderEventID, Value: arena[valEnd:idEnd:idEnd]})
		if idEnd < end {
			hdrs = append(hdrs, kafka.Header{Key: HeaderOrigin, Value: arena[idEnd:end:end]})
		}
		m.Headers = hdrs[h:len(hdrs):len(hdrs)]
		entries[i] = entry{ack: events[i].Ack, size: int64(end - start)}
		m.WriterData = &entries[i]
		start = end
	}
	return int64(len(arena))
}

// appendEventID appends e.ID() to dst.
func appendEventID(dst []byte, e *cdc.Event) []byte {
	if e.DeliveryID != "" {
		return append(dst, e.DeliveryID...)
	}
	lsn := e.Pos.CommitLSN
	dst = appendUpperHex(dst, uint32(lsn>>32))
	dst = append(dst, '/')
	dst = appendUpperHex(dst, uint32(lsn))
	dst = append(dst, '/')
	return strconv.AppendUint(dst, uint64(e.Pos.Index), 10)
}

func appendUpperHex(dst []byte, v uint32) []byte {
	const digits = "0123456789ABCDEF"
	var b [8]byte
	i := len(b)
	for {
		i--
		b[i] = digits[v&0xF]
		v >>= 4
		if v == 0 {
			break
		}
	}
	return append(dst, b[i:]...)
}
