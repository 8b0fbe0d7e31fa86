package store

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/sinks/hubspot"
	"github.com/cdcd-dev/cdcd/syncstate"
	fake "github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

// contactsPipeline is a contacts-to-hubspot pipeline on s, writing to a
// fresh HubSpot double; onDelete is the writer's on_delete.
func contactsPipeline(t *testing.T, s *Store, onDelete string) (*delivery.Pipeline, *fake.Server) {
	t.Helper()
	const token = "pat-na1-test"
	hub := fake.New(fake.Options{Tokens: []string{token}})
	t.Cleanup(hub.Close)
	c := hubspot.NewConfig()
	c.BaseURL, c.Token, c.Object, c.IDProperty, c.OnDelete = hub.URL(), token, "contacts", "email", onDelete
	log := zerolog.New(zerolog.NewTestWriter(t))
	w, err := hubspot.New("hubspot", c, log, ratelimit.NewLimiters())
	if err != nil {
		t.Fatal(err)
	}
	p, err := delivery.NewPipeline(delivery.PipelineConfig{
		Name: "contacts-to-hubspot", System: "hubspot", Object: "contacts",
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
	}, contactMapper{}, w, delivery.Stores{Links: s.Links(), DeadLetters: s.DeadLetters(), Audit: s.Audit(), Pending: s.PendingCreates()},
		log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return p, hub
}

func contactLink(ctx context.Context, t *testing.T, s *Store, id int) *syncstate.Link {
	t.Helper()
	ref := syncstate.LinkRef{System: "hubspot", Object: "contacts", Table: "public.contacts", Key: `{"id":` + strconv.Itoa(id) + `}`}
	got, err := s.Links().Get(ctx, []syncstate.LinkRef{ref})
	if err != nil {
		t.Fatal(err)
	}
	return got[ref]
}

// A row whose delete was delivered, inserted again with the same key in a
// later batch, is created anew: the link read back from the store says the
// record was deleted, so the archived contact is not updated.
func TestPipelineCreatesAnewARowInsertedAgainAfterItsDelete(t *testing.T) {
	s, _ := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, hub := contactsPipeline(t, s, hubspot.OnDeleteArchive)

	if err := p.Write(ctx, []cdc.Event{contactEvent(0x10, 1, cdc.OpCreate, "x@example.com", "Old")}); err != nil {
		t.Fatal(err)
	}
	if err := p.Write(ctx, []cdc.Event{contactEvent(0x20, 1, cdc.OpDelete, "", "")}); err != nil {
		t.Fatal(err)
	}
	old := contactLink(ctx, t, s, 1)
	if old == nil || !old.Deleted || old.Base != nil {
		t.Fatalf("row 1's link after its delete: %+v, want a deleted one", old)
	}
	if o := get(t, hub, old.ExternalID); !o.Archived {
		t.Fatalf("contact %s not archived after row 1's delete", old.ExternalID)
	}

	if err := p.Write(ctx, []cdc.Event{contactEvent(0x30, 1, cdc.OpCreate, "x@example.com", "Again")}); err != nil {
		t.Fatal(err)
	}
	l := contactLink(ctx, t, s, 1)
	if l == nil || l.Deleted || l.ExternalID == old.ExternalID {
		t.Fatalf("row 1 inserted again: link %+v, want one to a new contact", l)
	}
	o := get(t, hub, l.ExternalID)
	if o.Archived || o.Properties["email"] != "x@example.com" || o.Properties["firstname"] != "Again" {
		t.Fatalf("row 1's new contact %s: archived %v, %v", l.ExternalID, o.Archived, o.Properties)
	}
	if o := get(t, hub, old.ExternalID); !o.Archived || o.Properties["firstname"] != "Old" {
		t.Fatalf("the archived contact %s changed: archived %v, %v", old.ExternalID, o.Archived, o.Properties)
	}
}

// A deleted link holds no id: a link of another local record that claims
// it takes it, and the deleted link is gone (its record is created anew
// either way); a live link still holds its id.
func TestLinksDeletedLinkHoldsNoID(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	links := s.Links()
	lk := func(id int, ext string, deleted bool) syncstate.Link {
		l := syncstate.Link{System: "hubspot", Object: "contacts", Table: "public.contacts",
			Key: `{"id":` + strconv.Itoa(id) + `}`, ExternalID: ext, Deleted: deleted}
		if !deleted {
			l.Base = map[string]any{"email": "x@example.com"}
		}
		return l
	}
	if err := links.Put(ctx, []syncstate.Link{lk(1, "101", true), lk(3, "103", false)}); err != nil {
		t.Fatal(err)
	}
	if err := links.Put(ctx, []syncstate.Link{lk(2, "101", false)}); err != nil {
		t.Fatalf("claim on a deleted link's id: %v", err)
	}
	if l := contactLink(ctx, t, s, 1); l != nil {
		t.Fatalf("the deleted link stayed: %+v", l)
	}
	if l := contactLink(ctx, t, s, 2); l == nil || l.ExternalID != "101" || l.Deleted || l.Base["email"] != "x@example.com" {
		t.Fatalf("the claimant's link: %+v", l)
	}
	err := links.Put(ctx, []syncstate.Link{lk(4, "103", false)})
	var c *LinkConflictError
	if !errors.As(err, &c) || c.HolderKey != `{"id":3}` {
		t.Fatalf("claim on a live link's id: %v, want a conflict with row 3", err)
	}
}

// claimOfDeletedRow makes row 1 (x@example.com), then row 2 with its
// email, whose create HubSpot answers with row 1's contact: row 2 is
// dead-lettered. It returns row 1's contact id and the letter.
func claimOfDeletedRow(ctx context.Context, t *testing.T, s *Store, p *delivery.Pipeline) (string, DeadLetter) {
	t.Helper()
	if err := p.Write(ctx, []cdc.Event{contactEvent(0x10, 1, cdc.OpCreate, "x@example.com", "Old")}); err != nil {
		t.Fatal(err)
	}
	old := contactLink(ctx, t, s, 1)
	if old == nil {
		t.Fatal("row 1 was not linked")
	}
	if err := p.Write(ctx, []cdc.Event{contactEvent(0x30, 2, cdc.OpCreate, "x@example.com", "New")}); err != nil {
		t.Fatal(err)
	}
	letters, err := s.ListDeadLetters(ctx, DeadLetterFilter{Pipeline: "contacts-to-hubspot"})
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 1 || letters[0].Key != `{"id":2}` {
		t.Fatalf("dead letters %+v, want one for row 2", letters)
	}
	return old.ExternalID, letters[0]
}

// takenOver checks that the letter was marked for replay, replays it, and
// checks that row 2 is then linked to contact id, live, with its values,
// and row 1's link is deleted.
func takenOver(ctx context.Context, t *testing.T, s *Store, p *delivery.Pipeline, hub *fake.Server, id string, letter DeadLetter) {
	t.Helper()
	if got, err := s.GetDeadLetter(ctx, letter.ID); err != nil || got.Status != StatusReplay {
		t.Fatalf("dead letter after row 1's delete: status %q (%v), want replay", got.Status, err)
	}
	if n, err := p.ReplayDeadLetters(ctx); err != nil || n != 1 {
		t.Fatalf("replay: %d, %v", n, err)
	}
	if l := contactLink(ctx, t, s, 2); l == nil || l.ExternalID != id || l.Deleted {
		t.Fatalf("row 2 after the replay: link %+v, want one to contact %s", l, id)
	}
	o := get(t, hub, id)
	if o.Archived || o.Properties["email"] != "x@example.com" || o.Properties["firstname"] != "New" {
		t.Fatalf("contact %s: archived %v, %v", id, o.Archived, o.Properties)
	}
	if l := contactLink(ctx, t, s, 1); l != nil && !l.Deleted {
		t.Fatalf("row 1's link stayed live: %+v", l)
	}
}

// The old row's delete is held by an open conflict, so HubSpot keeps its
// contact, which it takes for row 2's (same email): skipping the delete
// releases the id, and row 2's dead letter is replayed and linked to it.
func TestPipelineHeldDeleteReleasesTheIDARecreateClaimed(t *testing.T) {
	s, url := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, hub := contactsPipeline(t, s, hubspot.OnDeleteArchive)
	id, letter := claimOfDeletedRow(ctx, t, s, p)

	holdRow(t, url, id, `{"id":1}`)
	if err := p.Write(ctx, []cdc.Event{contactEvent(0x20, 1, cdc.OpDelete, "", "")}); err != nil {
		t.Fatal(err)
	}
	if o := get(t, hub, id); o.Archived {
		t.Fatalf("contact %s archived by a held delete", id)
	}
	takenOver(ctx, t, s, p, hub, id, letter)
}

// A re-create that comes after the old row's held delete is linked to
// the contact at once.
func TestPipelineRecreateAfterAHeldDeleteIsLinked(t *testing.T) {
	s, url := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, hub := contactsPipeline(t, s, hubspot.OnDeleteArchive)
	if err := p.Write(ctx, []cdc.Event{contactEvent(0x10, 1, cdc.OpCreate, "x@example.com", "Old")}); err != nil {
		t.Fatal(err)
	}
	old := contactLink(ctx, t, s, 1)
	holdRow(t, url, old.ExternalID, `{"id":1}`)
	err := p.Write(ctx, []cdc.Event{
		contactEvent(0x20, 1, cdc.OpDelete, "", ""),
		contactEvent(0x30, 2, cdc.OpCreate, "x@example.com", "New"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if l := contactLink(ctx, t, s, 2); l == nil || l.ExternalID != old.ExternalID {
		t.Fatalf("row 2: link %+v, want one to contact %s", l, old.ExternalID)
	}
	if o := get(t, hub, old.ExternalID); o.Archived || o.Properties["firstname"] != "New" {
		t.Fatalf("contact %s: archived %v, %v", old.ExternalID, o.Archived, o.Properties)
	}
	letters, err := s.ListDeadLetters(ctx, DeadLetterFilter{Pipeline: "contacts-to-hubspot"})
	if err != nil || len(letters) != 0 {
		t.Fatalf("dead letters %+v (%v), want none", letters, err)
	}
}

// With on_delete ignore (or clear), the old row's delete leaves its
// contact live: once delivered, row 2's dead letter is replayed and
// linked to that contact.
func TestPipelineDeleteThatKeepsTheContactReleasesItsID(t *testing.T) {
	for _, onDelete := range []string{hubspot.OnDeleteIgnore, hubspot.OnDeleteClear} {
		t.Run(onDelete, func(t *testing.T) {
			s, _ := openStore(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			p, hub := contactsPipeline(t, s, onDelete)
			id, letter := claimOfDeletedRow(ctx, t, s, p)
			if err := p.Write(ctx, []cdc.Event{contactEvent(0x20, 1, cdc.OpDelete, "", "")}); err != nil {
				t.Fatal(err)
			}
			takenOver(ctx, t, s, p, hub, id, letter)
		})
	}
}

// holdRow records an open conflict on contact id, row key of
// public.contacts.
func holdRow(t *testing.T, url, id, key string) {
	t.Helper()
	execSQL(t, url, `INSERT INTO cdcd.conflicts (pipeline, system, object, external_id, local_table, local_key,
		fields, base, local, remote, rule, status)
		VALUES ('contacts-from-hubspot', 'hubspot', 'contacts', $1, 'public.contacts', $2,
		'{firstname}', '{}', '{}', '{}', 'manual', 'pending')`, id, key)
}
