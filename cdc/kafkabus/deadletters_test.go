package kafkabus

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/delivery/deliverytest"
	"github.com/cdcd-dev/cdcd/syncstate"
)

func TestDeadLettersGoToTheTopicAndTheStore(t *testing.T) {
	k := cdctest.StartKafka(t, kfake.NumBrokers(1))
	store := deliverytest.NewDeadLetters()
	d, err := NewDeadLetterTopic(store, Config{Brokers: k.Brokers(), CreateTopics: true, Partitions: 1}, "contacts-to-hubspot", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	letters := []syncstate.DeadLetter{{
		Pipeline: "contacts-to-hubspot", System: "hubspot", Object: "contacts", Table: "public.contacts",
		Key: `{"id":7}`, EventID: "0/16B3748/0", Op: cdc.OpCreate, Error: "Property values were not valid: phone",
		Attempts: 1, FailedAt: time.Unix(1700000000, 0).UTC(), Record: json.RawMessage(`{"phone":"x"}`),
	}}
	if err := d.Put(context.Background(), letters); err != nil {
		t.Fatal(err)
	}
	if d.Topic() != "cdcd.dlq.contacts-to-hubspot" {
		t.Fatalf("topic %q", d.Topic())
	}
	recs := cdctest.ReadTopic(t, k.Brokers(), d.Topic())
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
	if n := len(store.Letters()); n != 1 {
		t.Fatalf("%d letters stored, want 1", n)
	}
}
