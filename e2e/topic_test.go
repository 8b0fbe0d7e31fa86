package e2e

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/cdc/kafkabus"
)

// event is one record of a table's topic, decoded.
type event struct {
	partition int32
	offset    int64
	id        string // header cdcd-event-id
	pos       cdc.Position
	txID      uint32
	op        string
	table     string
	key       string                     // the record key; "" for a null key
	before    map[string]json.RawMessage // nil for null
	after     map[string]json.RawMessage // nil for null
	// beforeRaw and afterRaw are the rows as cdcd wrote them.
	beforeRaw, afterRaw []byte
	unchanged           []string
	value               []byte
	// newKey and oldKey are the headers of a primary-key change: the
	// delete under the old key names the new one, the create under the new
	// key the old one.
	newKey, oldKey string
	// tombstoned: the next record of the partition is this delete's
	// tombstone (same key, null value).
	tombstoned bool
}

// readEvents reads every record of topic, in partition and offset order.
func readEvents(t *testing.T, brokers []string, topic string) []event {
	t.Helper()
	return readTopic(t, brokers, topic, true)
}

// readTopic is readEvents, decoding before and after into maps only with
// rows. A tombstone must follow the delete it belongs to (same partition,
// key and event id), which it marks tombstoned; it is not an event.
func readTopic(t *testing.T, brokers []string, topic string, rows bool) []event {
	t.Helper()
	recs := cdctest.ReadTopic(t, brokers, topic)
	events := make([]event, 0, len(recs))
	for _, r := range recs {
		e := event{partition: r.Partition, offset: r.Offset, key: string(r.Key), value: r.Value}
		e.id, _ = r.Header(kafkabus.HeaderEventID)
		if r.Value == nil {
			n := len(events)
			if n == 0 || events[n-1].partition != r.Partition || events[n-1].op != "d" || events[n-1].key != e.key ||
				events[n-1].id != e.id || events[n-1].tombstoned || e.key == "" {
				t.Fatalf("%s partition %d offset %d: a tombstone (key %s, id %s) that does not follow its delete", topic, r.Partition, r.Offset, e.key, e.id)
			}
			events[n-1].tombstoned = true
			continue
		}
		e.newKey, _ = r.Header(kafkabus.HeaderNewKey)
		e.oldKey, _ = r.Header(kafkabus.HeaderOldKey)
		if err := parseEnvelope(r.Value, &e, rows); err != nil {
			t.Fatalf("%s partition %d offset %d: value is not an envelope: %v", topic, r.Partition, r.Offset, err)
		}
		events = append(events, e)
	}
	return events
}

// delivered is a topic's events with re-sends set aside.
type delivered struct {
	byID map[string]*event
	// perKey holds each key's events in offset order, first occurrences
	// only.
	perKey map[string][]*event
	// last is each key's last record.
	last map[string]*event
	// resends counts records whose id came earlier.
	resends int
}

// checkDelivery asserts what holds for any topic cdcd writes in the
// default (debezium) format: the header id is "<commit_lsn>/<index>" of
// the envelope's source block; a repeated id is a re-send of the same
// change (same key and partition, identical envelope but for its
// processing time), except for the delete under the old key of a
// primary-key change, which shares its id with the create; every delete is
// followed by its tombstone; and each key's first occurrences are in
// strictly increasing commit order.
func checkDelivery(t *testing.T, events []event) *delivered {
	t.Helper()
	d := &delivered{byID: map[string]*event{}, perKey: map[string][]*event{}, last: map[string]*event{}}
	for i := range events {
		e := &events[i]
		if e.pos.CommitLSN == 0 || e.id != eventID(e.pos) {
			t.Fatalf("partition %d offset %d: header %s=%q, source lsn/index %v", e.partition, e.offset, kafkabus.HeaderEventID, e.id, e.pos)
		}
		if e.op == "d" && !e.tombstoned {
			t.Errorf("partition %d offset %d: delete %s without its tombstone", e.partition, e.offset, e.id)
		}
		d.last[e.key] = e
		id := e.id
		if e.newKey != "" {
			id += " old key"
		}
		if first, ok := d.byID[id]; ok {
			d.resends++
			if first.key != e.key || first.partition != e.partition || !bytes.Equal(stable(first.value), stable(e.value)) {
				t.Errorf("event id %s is used by two different events (partition %d offsets %d and %d)", e.id, e.partition, first.offset, e.offset)
			}
			continue
		}
		d.byID[id] = e
		seq := d.perKey[e.key]
		if n := len(seq); n > 0 && !seq[n-1].pos.Less(e.pos) {
			t.Errorf("key %s: event %s (offset %d) first arrives after %s (offset %d): commit order broken",
				e.key, e.id, e.offset, seq[n-1].id, seq[n-1].offset)
		}
		d.perKey[e.key] = append(seq, e)
	}
	return d
}

// eventID is pos.String() without fmt, which is slow under the race
// detector at 200,000 events.
func eventID(pos cdc.Position) string {
	b := make([]byte, 0, 24)
	b = append(b, strings.ToUpper(strconv.FormatUint(uint64(pos.CommitLSN)>>32, 16))...)
	b = append(b, '/')
	b = append(b, strings.ToUpper(strconv.FormatUint(uint64(pos.CommitLSN)&0xFFFFFFFF, 16))...)
	b = append(b, '/')
	return string(strconv.AppendUint(b, uint64(pos.Index), 10))
}
