package store

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/sinks/hubspot"
	"github.com/cdcd-dev/cdcd/syncapi"
	"github.com/cdcd-dev/cdcd/syncstate"
	fake "github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

// contactMapper maps public.contacts rows to HubSpot contacts: every
// column but id.
type contactMapper struct{}

func (contactMapper) Map(_ context.Context, e *cdc.Event) (syncapi.Record, bool, error) {
	rec := syncapi.Record{}
	if e.Op == cdc.OpDelete {
		return rec, true, nil
	}
	rec.Fields = map[string]any{}
	for _, f := range e.After {
		if f.Name == "id" {
			continue
		}
		var v any
		if err := json.Unmarshal(f.Value, &v); err != nil {
			return rec, false, err
		}
		rec.Fields[f.Name] = v
	}
	return rec, true, nil
}

func contactEvent(lsn uint64, id int, op cdc.Op, email, name string) cdc.Event {
	k := json.RawMessage(strconv.Itoa(id))
	e := cdc.Event{
		Op: op, Source: cdc.SourcePostgres, Schema: "public", Table: "contacts",
		Key: cdc.Row{{Name: "id", Value: k}}, Pos: cdc.Position{CommitLSN: cdc.LSN(lsn)},
		CommitTime: time.Unix(1700000000, 0),
	}
	if op == cdc.OpDelete {
		e.Before = e.Key
		return e
	}
	em, _ := json.Marshal(email)
	nm, _ := json.Marshal(name)
	e.After = cdc.Row{{Name: "id", Value: k}, {Name: "email", Value: em}, {Name: "firstname", Value: nm}}
	return e
}

// A contact deleted and made again locally (a new row, the same email)
// whose re-create reaches HubSpot before the old row's delete: the upsert
// by email answers the old contact's id, which the old row's link holds.
// The claim is dead-lettered alone, saying why and what to do; the rest of
// the batch and later batches are delivered; once the old row's delete
// is delivered, the letter is replayed, which links the new row to a new,
// live contact with its values.
func TestPipelineDeadLettersAClaimOnAnIDAnotherRecordHolds(t *testing.T) {
	s, _ := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const token = "pat-na1-test"
	hub := fake.New(fake.Options{Tokens: []string{token}})
	t.Cleanup(hub.Close)
	c := hubspot.NewConfig()
	c.BaseURL, c.Token, c.Object, c.IDProperty = hub.URL(), token, "contacts", "email"
	log := zerolog.New(zerolog.NewTestWriter(t))
	w, err := hubspot.New("hubspot", c, log, ratelimit.NewLimiters())
	if err != nil {
		t.Fatal(err)
	}
	links := s.Links()
	p, err := delivery.NewPipeline(delivery.PipelineConfig{
		Name: "contacts-to-hubspot", System: "hubspot", Object: "contacts",
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
	}, contactMapper{}, w, delivery.Stores{Links: links, DeadLetters: s.DeadLetters(), Audit: s.Audit(), Pending: s.PendingCreates()},
		log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ref := func(id int) syncstate.LinkRef {
		return syncstate.LinkRef{System: "hubspot", Object: "contacts", Table: "public.contacts", Key: `{"id":` + strconv.Itoa(id) + `}`}
	}
	linkOf := func(id int) *syncstate.Link {
		t.Helper()
		got, err := links.Get(ctx, []syncstate.LinkRef{ref(id)})
		if err != nil {
			t.Fatal(err)
		}
		return got[ref(id)]
	}

	if err := p.Write(ctx, []cdc.Event{contactEvent(0x10, 1, cdc.OpCreate, "x@example.com", "Old")}); err != nil {
		t.Fatal(err)
	}
	old := linkOf(1)
	if old == nil {
		t.Fatal("row 1 was not linked")
	}

	// Row 1 deleted, row 2 made with its email; row 2's create (and an
	// unrelated row 3) come first.
	err = p.Write(ctx, []cdc.Event{
		contactEvent(0x30, 2, cdc.OpCreate, "x@example.com", "New"),
		contactEvent(0x30, 3, cdc.OpCreate, "y@example.com", "Other"),
	})
	if err != nil {
		t.Fatalf("a claim on a linked id failed the batch: %v", err)
	}
	if l := linkOf(3); l == nil {
		t.Fatal("row 3, of the same batch, was not linked")
	}
	if l := linkOf(2); l != nil {
		t.Fatalf("row 2 linked to %s, which row 1 holds", l.ExternalID)
	}
	if l := linkOf(1); l == nil || l.ExternalID != old.ExternalID {
		t.Fatalf("row 1's link changed: %+v", l)
	}
	letters, err := s.ListDeadLetters(ctx, DeadLetterFilter{Pipeline: "contacts-to-hubspot"})
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 1 || letters[0].Key != `{"id":2}` {
		t.Fatalf("dead letters %+v, want one for row 2", letters)
	}
	for _, want := range []string{old.ExternalID, `public.contacts {"id":1}`, "deleted", "cdcd dlq replay"} {
		if !strings.Contains(letters[0].Error, want) {
			t.Errorf("dead letter error %q does not mention %q", letters[0].Error, want)
		}
	}

	// Later batches go on; then row 1's delete archives the old contact.
	if err := p.Write(ctx, []cdc.Event{contactEvent(0x40, 4, cdc.OpCreate, "z@example.com", "Later")}); err != nil {
		t.Fatal(err)
	}
	if linkOf(4) == nil {
		t.Fatal("row 4, of a later batch, was not linked")
	}
	if err := p.Write(ctx, []cdc.Event{contactEvent(0x20, 1, cdc.OpDelete, "", "")}); err != nil {
		t.Fatal(err)
	}
	if o := get(t, hub, old.ExternalID); !o.Archived {
		t.Fatalf("contact %s not archived after row 1's delete", old.ExternalID)
	}

	// Delivering the delete marked the letter for replay; the daemon's
	// RunReplays takes it.
	if got, err := s.GetDeadLetter(ctx, letters[0].ID); err != nil || got.Status != StatusReplay {
		t.Fatalf("dead letter after row 1's delete: status %q (%v), want replay", got.Status, err)
	}
	if n, err := p.ReplayDeadLetters(ctx); err != nil || n != 1 {
		t.Fatalf("replay: %d, %v", n, err)
	}
	l := linkOf(2)
	if l == nil || l.ExternalID == old.ExternalID {
		t.Fatalf("row 2 after the replay: link %+v, want one to a new contact", l)
	}
	o := get(t, hub, l.ExternalID)
	if o.Archived || o.Properties["email"] != "x@example.com" || o.Properties["firstname"] != "New" {
		t.Fatalf("row 2's contact %s: archived %v, %v", l.ExternalID, o.Archived, o.Properties)
	}
}

func get(t *testing.T, hub *fake.Server, id string) fake.Object {
	t.Helper()
	o, ok := hub.Get("contacts", id)
	if !ok {
		t.Fatalf("contact %s not in the double", id)
	}
	return o
}
