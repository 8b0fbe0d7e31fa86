package kafkabus

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/store"
	"github.com/cdcd-dev/cdcd/syncstate"
)

const dlqPipeline = "contacts-to-hubspot"

// dlqFixture is a store whose dead letters go to a topic on a cluster.
func dlqFixture(t *testing.T, opts ...kfake.Opt) (*store.Store, *DeadLetterTopic, []string) {
	t.Helper()
	k := cdctest.StartKafka(t, append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	pg := cdctest.StartPostgres(t)
	s, err := store.Open(context.Background(), pg.CreateDB(t, "app"), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	d, err := NewDeadLetterTopic(s.DeadLettersToTopic(), Config{Brokers: k.Brokers(), CreateTopics: true, Partitions: 1}, dlqPipeline, testLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	return s, d, k.Brokers()
}

func dlqLetters() []syncstate.DeadLetter {
	return []syncstate.DeadLetter{{
		Pipeline: dlqPipeline, System: "hubspot", Object: "contacts", Table: "public.contacts",
		Key: `{"id":7}`, EventID: "0/16B3748/0", Op: cdc.OpCreate, Error: "Property values were not valid: phone",
		Attempts: 1, FailedAt: time.Unix(1700000000, 0).UTC(), Record: json.RawMessage(`{"phone":"x"}`),
	}}
}

func TestDeadLettersGoToTheTopicAndTheStore(t *testing.T) {
	s, d, brokers := dlqFixture(t)
	ctx := context.Background()
	letters := dlqLetters()
	if err := s.DeadLettersToTopic().Put(ctx, letters); err != nil {
		t.Fatal(err)
	}
	if n, err := d.publish(ctx); err != nil || n != 1 {
		t.Fatalf("published %d, %v; want 1", n, err)
	}
	if d.Topic() != "cdcd.dlq.contacts-to-hubspot" {
		t.Fatalf("topic %q", d.Topic())
	}
	recs := cdctest.ReadTopic(t, brokers, d.Topic())
	if len(recs) != 1 {
		t.Fatalf("%d messages on the dead-letter topic, want 1", len(recs))
	}
	var got deadLetterMessage
	if err := json.Unmarshal(recs[0].Value, &got); err != nil {
		t.Fatal(err)
	}
	if got.Error != letters[0].Error || got.EventID != letters[0].EventID || got.Op != "c" || string(recs[0].Key) != `{"id":7}` {
		t.Fatalf("message %+v key %s", got, recs[0].Key)
	}
	if id, _ := recs[0].Header(HeaderEventID); id != "0/16B3748/0" {
		t.Fatalf("event id header %q", id)
	}
	stored, err := s.ListDeadLetters(ctx, store.DeadLetterFilter{Pipeline: dlqPipeline})
	if err != nil || len(stored) != 1 {
		t.Fatalf("%d letters stored (%v), want 1", len(stored), err)
	}
	if id, _ := recs[0].Header(HeaderDeadLetterID); got.ID != stored[0].ID || id != strconv.FormatInt(stored[0].ID, 10) {
		t.Fatalf("letter id %d, header %q; stored as %d", got.ID, id, stored[0].ID)
	}
}

// Regression test: on Kafka a dead letter was published before the
// transaction that stored it committed, so a group of writes whose
// bookkeeping was rolled back and stored again (delivery's settle retries
// it) published its letters again, and so did a change failing again
// after a re-send. The store keeps one letter: the topic must too.
func TestDeadLetterOfARetriedGroupIsPublishedOnce(t *testing.T) {
	s, d, brokers := dlqFixture(t)
	ctx := context.Background()
	dead := s.DeadLettersToTopic()
	letters := dlqLetters()

	// The group's first try: its letter is stored, then its audit fails
	// and the transaction rolls back. Nothing uncommitted is published.
	audit := errors.New("audit: connection reset")
	err := s.InTx(ctx, func(txCtx context.Context) error {
		if err := dead.Put(txCtx, letters); err != nil {
			return err
		}
		if n, err := d.publish(ctx); err != nil || n != 0 {
			t.Errorf("published %d (%v) while the transaction storing them was open", n, err)
		}
		return audit
	})
	if !errors.Is(err, audit) {
		t.Fatalf("first try: %v", err)
	}
	// The retry commits; later the change is re-sent and fails again.
	for range 2 {
		if err := s.InTx(ctx, func(ctx context.Context) error { return dead.Put(ctx, letters) }); err != nil {
			t.Fatal(err)
		}
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	defer func() { stop(); <-done }()
	cdctest.Eventually(t, 30*time.Second, "the letter on the topic", func() bool {
		return len(cdctest.ReadTopic(t, brokers, d.Topic())) > 0
	})
	if n, err := d.publish(ctx); err != nil || n != 0 {
		t.Fatalf("published %d more (%v), want none left", n, err)
	}
	stored, err := s.ListDeadLetters(ctx, store.DeadLetterFilter{Pipeline: dlqPipeline})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || stored[0].Attempts != 2 {
		t.Fatalf("%d letters stored, want 1 with 2 attempts: %+v", len(stored), stored)
	}
	if recs := cdctest.ReadTopic(t, brokers, d.Topic()); len(recs) != 1 {
		t.Fatalf("%d messages on %s for one dead letter, want 1", len(recs), d.Topic())
	}
}

// Regression test: a letter larger than Kafka takes in one message (a row
// with a large column) failed every publish of the batch it was in, so it
// and every later letter of the pipeline never reached the topic. It is
// published without its record and event, which stay in the store.
func TestOversizedDeadLetterDoesNotHoldBackTheOthers(t *testing.T) {
	s, d, brokers := dlqFixture(t)
	ctx := context.Background()
	big := dlqLetters()
	big[0].Record = json.RawMessage(`{"notes":"` + strings.Repeat("x", 2<<20) + `"}`)
	small := dlqLetters()
	small[0].Key, small[0].EventID = `{"id":8}`, "0/16B3748/1"
	dead := s.DeadLettersToTopic()
	for _, l := range [][]syncstate.DeadLetter{big, small} {
		if err := dead.Put(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := d.publish(ctx); err != nil || n != 2 {
		t.Fatalf("published %d, %v; want 2", n, err)
	}
	recs := cdctest.ReadTopic(t, brokers, d.Topic())
	if len(recs) != 2 {
		t.Fatalf("%d messages on the dead-letter topic, want 2", len(recs))
	}
	var got deadLetterMessage
	if err := json.Unmarshal(recs[0].Value, &got); err != nil {
		t.Fatal(err)
	}
	if got.EventID != big[0].EventID || got.Record != nil || !got.Omitted || got.ID == 0 {
		t.Fatalf("oversized letter published as %s", recs[0].Value[:min(len(recs[0].Value), 300)])
	}
	got = deadLetterMessage{}
	if err := json.Unmarshal(recs[1].Value, &got); err != nil {
		t.Fatal(err)
	}
	if got.EventID != small[0].EventID || string(got.Record) != `{"phone":"x"}` || got.Omitted {
		t.Fatalf("second letter published as %s", recs[1].Value)
	}
}

// dlqMessages reads the dead-letter topic's messages.
func dlqMessages(t *testing.T, brokers []string, topic string) []deadLetterMessage {
	t.Helper()
	recs := cdctest.ReadTopic(t, brokers, topic)
	out := make([]deadLetterMessage, len(recs))
	for i, r := range recs {
		if err := json.Unmarshal(r.Value, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// Regression test: a letter still too large for one Kafka message once its
// record and event were left out (a vendor answering with a 5 MB error
// body) failed every publish, so every later letter of the pipeline waited
// for it forever. The store keeps the error's first syncstate.MaxErrorBytes,
// saying it was cut, and so does the topic.
func TestDeadLetterWithAHugeErrorDoesNotHoldBackTheOthers(t *testing.T) {
	s, d, brokers := dlqFixture(t)
	ctx := context.Background()
	huge := dlqLetters()
	huge[0].Error = "422 Unprocessable Entity: " + strings.Repeat("<div>no</div>", 5<<20/13)
	small := dlqLetters()
	small[0].Key, small[0].EventID = `{"id":8}`, "0/16B3748/1"
	dead := s.DeadLettersToTopic()
	for _, l := range [][]syncstate.DeadLetter{huge, small} {
		if err := dead.Put(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := d.publish(ctx); err != nil || n != 2 {
		t.Fatalf("published %d, %v; want 2", n, err)
	}
	got := dlqMessages(t, brokers, d.Topic())
	if len(got) != 2 || got[0].EventID != huge[0].EventID || got[1].EventID != small[0].EventID {
		t.Fatalf("%d messages on the dead-letter topic, want the two letters in order", len(got))
	}
	if len(got[0].Error) > syncstate.MaxErrorBytes || !strings.HasPrefix(got[0].Error, "422 Unprocessable Entity: <div>") || !strings.Contains(got[0].Error, "cut") {
		t.Fatalf("huge error published as %d bytes ending %q", len(got[0].Error), got[0].Error[max(0, len(got[0].Error)-80):])
	}
	if got[1].Error != small[0].Error || string(got[1].Record) != `{"phone":"x"}` {
		t.Fatalf("second letter published as %+v", got[1])
	}
	stored, err := s.ListDeadLetters(ctx, store.DeadLetterFilter{Pipeline: dlqPipeline})
	if err != nil || len(stored) != 2 {
		t.Fatalf("%d letters stored (%v), want 2", len(stored), err)
	}
	for _, l := range stored {
		if l.EventID == huge[0].EventID && (len(l.Error) > syncstate.MaxErrorBytes || !strings.Contains(l.Error, "cut")) {
			t.Fatalf("stored error of %d bytes ending %q", len(l.Error), l.Error[max(0, len(l.Error)-80):])
		}
	}
}

// Regression test: on a topic whose max.message.bytes is small, a letter
// whose error alone is larger held back every later letter; one whose key
// alone is larger can never be published. The first is published with its
// error cut further, the second is left out (counted, and kept in the
// store), and the letters after them are published.
func TestDeadLettersTooLargeForASmallTopicDoNotHoldBackTheOthers(t *testing.T) {
	const maxBytes = 3000
	s, d, brokers := dlqFixture(t, kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(maxBytes)}))
	ctx := context.Background()
	longError := dlqLetters()
	longError[0].Error = strings.Repeat("e", 20000)
	longKey := dlqLetters()
	longKey[0].Key, longKey[0].EventID = `{"id":"`+strings.Repeat("k", 2*maxBytes)+`"}`, "0/16B3748/1"
	small := dlqLetters()
	small[0].Key, small[0].EventID = `{"id":8}`, "0/16B3748/2"
	dead := s.DeadLettersToTopic()
	for _, l := range [][]syncstate.DeadLetter{longError, longKey, small} {
		if err := dead.Put(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := d.publish(ctx); err != nil || n != 3 {
		t.Fatalf("published %d, %v; want 3 (one of them left out)", n, err)
	}
	got := dlqMessages(t, brokers, d.Topic())
	if len(got) != 2 || got[0].EventID != longError[0].EventID || got[1].EventID != small[0].EventID {
		t.Fatalf("%d messages on the dead-letter topic, want the long error's and the small letter: %+v", len(got), got)
	}
	if !got[0].Omitted || !strings.HasPrefix(got[0].Error, "eeee") || !strings.Contains(got[0].Error, "cut") || len(got[0].Error) >= maxBytes {
		t.Fatalf("long error published as %d bytes, omitted %v", len(got[0].Error), got[0].Omitted)
	}
	if got[1].Error != small[0].Error || string(got[1].Record) != `{"phone":"x"}` || got[1].Omitted {
		t.Fatalf("small letter published as %+v", got[1])
	}
	if n := testutil.ToFloat64(d.unpublishable); n != 1 {
		t.Fatalf("%v letters counted unpublishable, want 1", n)
	}
	if n, err := d.publish(ctx); err != nil || n != 0 {
		t.Fatalf("published %d more (%v), want none left", n, err)
	}
}
