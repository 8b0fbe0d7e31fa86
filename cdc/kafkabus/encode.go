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
	// HeaderPipelines carries Event.Pipelines when set (a backfill's rows),
	// comma-separated: only those pipelines' consumers deliver the event.
	HeaderPipelines = "cdcd-pipelines"
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
	parts   []part
	entries []entry
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
	clear(s.parts)
	clear(s.unknown)
	if cap(s.buf) > maxScratch {
		s.buf = nil
	}
	s.buf, s.ends, s.msgs, s.parts, s.unknown = s.buf[:0], s.ends[:0], s.msgs[:0], s.parts[:0], s.unknown[:0]
	p.scratch.Put(s)
}

// encode fills s.msgs with the messages of the events (see format.go:
// one per event, or more for deletes and key changes in the debezium
// format). The keys, values and header values share one allocation sized
// to fit, and s.entries gets each message's WriterData. It collects in
// s.unknown the topics not yet known to exist and returns the bytes
// encoded.
func (p *Producer) encode(s *scratch, events []cdc.Event) int64 {
	now := time.Now()
	buf, ends := s.buf[:0], s.ends[:0]
	var lastSchema, lastTable, topic string
	headers := 0
	s.msgs, s.parts = s.msgs[:0], s.parts[:0]
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
		first := len(s.parts)
		s.parts = p.split(s.parts, e)
		ack := e.Ack
		if n := len(s.parts) - first; n > 1 && ack != nil {
			ack = newFanAck(ack, n)
		}
		for j := first; j < len(s.parts); j++ {
			m := &s.parts[j]
			m.ack = ack
			if m.ev.Key != nil {
				buf = p.appendKey(buf, m.ev, topic)
			}
			ends = append(ends, len(buf))
			if !m.tombstone {
				buf = p.appendValue(buf, m.ev, topic, now)
			}
			ends = append(ends, len(buf))
			buf = appendEventID(buf, e)
			ends = append(ends, len(buf))
			headers++
			if e.Origin != "" {
				buf = append(buf, e.Origin...)
				headers++
			}
			ends = append(ends, len(buf))
			if m.header != "" {
				buf = appendRowJSON(buf, m.headerKey)
				headers++
			}
			ends = append(ends, len(buf))
			for k, p := range e.Pipelines {
				if k > 0 {
					buf = append(buf, ',')
				}
				buf = append(buf, p...)
			}
			if len(e.Pipelines) > 0 {
				headers++
			}
			ends = append(ends, len(buf))
			s.msgs = append(s.msgs, kafka.Message{Topic: topic})
		}
	}
	s.buf, s.ends = buf, ends

	arena := make([]byte, len(buf))
	copy(arena, buf)
	hdrs := make([]kafka.Header, 0, headers)
	if cap(s.entries) < len(s.msgs) {
		s.entries = make([]entry, len(s.msgs))
	}
	entries := s.entries[:len(s.msgs)]
	start := 0
	for i := range s.msgs {
		m, part := &s.msgs[i], &s.parts[i]
		keyEnd, valEnd, idEnd, originEnd, headerEnd, end := ends[6*i], ends[6*i+1], ends[6*i+2], ends[6*i+3], ends[6*i+4], ends[6*i+5]
		if part.ev.Key != nil {
			m.Key = arena[start:keyEnd:keyEnd]
		}
		if !part.tombstone {
			m.Value = arena[keyEnd:valEnd:valEnd]
		}
		h := len(hdrs)
		hdrs = append(hdrs, kafka.Header{Key: HeaderEventID, Value: arena[valEnd:idEnd:idEnd]})
		if idEnd < originEnd {
			hdrs = append(hdrs, kafka.Header{Key: HeaderOrigin, Value: arena[idEnd:originEnd:originEnd]})
		}
		if part.header != "" {
			hdrs = append(hdrs, kafka.Header{Key: part.header, Value: arena[originEnd:headerEnd:headerEnd]})
		}
		if headerEnd < end {
			hdrs = append(hdrs, kafka.Header{Key: HeaderPipelines, Value: arena[headerEnd:end:end]})
		}
		m.Headers = hdrs[h:len(hdrs):len(hdrs)]
		entries[i] = entry{ack: part.ack, size: int64(end - start)}
		m.WriterData = &entries[i]
		start = end
	}
	// The writer keeps WriterData until the batch completes: the entries
	// must not be reused.
	s.entries = nil
	return int64(len(arena))
}

// appendRowJSON appends r as a JSON object, as message keys are.
func appendRowJSON(dst []byte, r cdc.Row) []byte {
	e := cdc.Event{Key: r}
	return cdc.AppendKey(dst, &e)
}

// appendEventID appends e.ID() to dst.
func appendEventID(dst []byte, e *cdc.Event) []byte {
	if e.DeliveryID != "" {
		return append(dst, e.DeliveryID...)
	}
	dst = e.Pos.CommitLSN.Append(dst)
	dst = append(dst, '/')
	return strconv.AppendUint(dst, uint64(e.Pos.Index), 10)
}
