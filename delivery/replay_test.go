package delivery_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/sinks/vendorhttp"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// rejecting makes v refuse email "bad" permanently while *broken is set.
func rejecting(v *vendor, broken *atomic.Bool) {
	v.fail = func(r delivery.Record, _ int) error {
		if broken.Load() && r.Fields["email"] == "bad" {
			return vendorhttp.Classify(400, nil, []byte(`{"message":"INVALID_EMAIL"}`), "upsert contacts")
		}
		return nil
	}
}

func replay(t *testing.T, h *harness) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := h.p.ReplayDeadLetters(ctx)
	if err != nil {
		t.Fatalf("ReplayDeadLetters: %v", err)
	}
	return n
}

func TestReplayDeliversAfterTheCauseIsFixed(t *testing.T) {
	t.Parallel()
	v := newVendor()
	var broken atomic.Bool
	broken.Store(true)
	rejecting(v, &broken)
	h := newHarness(t, delivery.PipelineConfig{}, v)
	e := ev(0x50, 2, 1, cdc.OpCreate, "email=bad", "name=Ada")
	h.write(t, e)
	letters := h.dead.Letters()
	if len(letters) != 1 {
		t.Fatalf("%d dead letters, want 1", len(letters))
	}
	if n := replay(t, h); n != 0 {
		t.Fatalf("replayed %d letters nobody asked for", n)
	}

	broken.Store(false)
	h.dead.AskReplay("contacts-to-crm")
	if n := replay(t, h); n != 1 {
		t.Fatalf("replayed %d, want 1", n)
	}
	if f := v.fields(1); f["email"] != "bad" || f["name"] != "Ada" {
		t.Errorf("vendor holds %v after replay", f)
	}
	if err, ok := h.dead.Resolved(letters[0].ID); !ok || err != nil {
		t.Errorf("letter resolved %v, %v; want resolved without error", ok, err)
	}
	if n := len(h.dead.Letters()); n != 0 {
		t.Errorf("%d letters still dead", n)
	}
	link, ok := h.links.Link(refOf(1))
	if !ok || link.ExternalID != "ext-1" || link.LSN != 0x50 {
		t.Errorf("link after replay %+v", link)
	}
	if got := h.statuses(e.ID()); !slices.Equal(got, []string{"dead_lettered#1", "replayed#1"}) {
		t.Errorf("audit %v", got)
	}
}

func TestReplayThatFailsAgainStaysDead(t *testing.T) {
	t.Parallel()
	v := newVendor()
	var broken atomic.Bool
	broken.Store(true)
	rejecting(v, &broken)
	h := newHarness(t, delivery.PipelineConfig{}, v)
	h.write(t, ev(1, 0, 1, cdc.OpCreate, "email=bad"))
	id := h.dead.Letters()[0].ID
	h.dead.AskReplay("contacts-to-crm")
	if n := replay(t, h); n != 1 {
		t.Fatalf("replayed %d, want 1", n)
	}
	err, ok := h.dead.Resolved(id)
	if !ok || err == nil || err.Error() != "upsert contacts: HTTP 400: INVALID_EMAIL" {
		t.Errorf("resolved %v with %v; want the vendor's error", ok, err)
	}
	if letters := h.dead.Letters(); len(letters) != 1 || letters[0].ID != id {
		t.Errorf("dead letters %+v, want the same one letter", letters)
	}
}

func TestReplayOfUnmappableEventMapsAgain(t *testing.T) {
	t.Parallel()
	v := newVendor()
	h := newHarness(t, delivery.PipelineConfig{}, v)
	h.m.broken.Store(true)
	e := ev(0x60, 0, 1, cdc.OpCreate, "bad=1", "name=Ada")
	e.Origin = "erp"
	h.write(t, e)
	letters := h.dead.Letters()
	if len(letters) != 1 || letters[0].Attempts != 0 || letters[0].Error != `map: unknown column "bad"` {
		t.Fatalf("dead letters %+v, want one mapping failure", letters)
	}

	h.m.broken.Store(false)
	h.dead.AskReplay("contacts-to-crm")
	replay(t, h)
	recs := v.records()
	if len(recs) != 1 {
		t.Fatalf("vendor got %d records", len(recs))
	}
	r := recs[0]
	if r.Fields["name"] != "Ada" || r.Fields["bad"] != "1" || r.Key != keyOf(1) || r.Op != cdc.OpCreate {
		t.Errorf("replayed record %+v", r)
	}
	if got := r.Event; got.ID() != e.ID() || got.Origin != "erp" || got.Pos != e.Pos || got.Table != "contacts" || got.Schema != "public" ||
		!got.CommitTime.Equal(e.CommitTime) || len(got.After) != 3 || got.After[1].Name != "bad" {
		t.Errorf("rebuilt event %+v, want %+v", got, e)
	}
}

func TestReplaySkipsSupersededLetters(t *testing.T) {
	t.Parallel()
	v := newVendor()
	var broken atomic.Bool
	broken.Store(true)
	rejecting(v, &broken)
	h := newHarness(t, delivery.PipelineConfig{}, v)
	h.write(t, ev(5, 0, 1, cdc.OpCreate, "email=bad"))
	newer := ev(6, 0, 1, cdc.OpUpdate, "email=a@b.c")
	h.write(t, newer)

	broken.Store(false)
	h.dead.AskReplay("contacts-to-crm")
	id := h.dead.Letters()[0].ID
	replay(t, h)
	if f := v.fields(1); f["email"] != "a@b.c" {
		t.Errorf("replay of an older change overwrote the newer one: %v", f)
	}
	if err, ok := h.dead.Resolved(id); !ok || err != nil {
		t.Errorf("superseded letter resolved %v, %v; want resolved", ok, err)
	}
	out := h.audit.Outcomes(cdc.Position{CommitLSN: 5}.String())
	if last := out[len(out)-1]; last.Status != syncstate.StatusSkipped || last.Error != "superseded by a newer delivered change" {
		t.Errorf("audit %+v", last)
	}
}

func TestRunReplaysUntilCancelled(t *testing.T) {
	t.Parallel()
	v := newVendor()
	var broken atomic.Bool
	broken.Store(true)
	rejecting(v, &broken)
	h := newHarness(t, delivery.PipelineConfig{}, v)
	var events []cdc.Event
	for k := range 150 { // more than one replay batch
		events = append(events, ev(1, uint32(k), k, cdc.OpCreate, "email=bad"))
	}
	h.write(t, events...)
	broken.Store(false)
	h.dead.AskReplay("contacts-to-crm")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.p.RunReplays(ctx, 5*time.Millisecond) }()
	waitFor(t, "every letter replayed", func() bool { return len(h.dead.Letters()) == 0 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunReplays = %v", err)
	}
	for k := range 150 {
		if f := v.fields(k); f["email"] != "bad" {
			t.Fatalf("key %d holds %v", k, f)
		}
	}
}

func TestReplayStoreFailureIsReturned(t *testing.T) {
	t.Parallel()
	h := newHarness(t, delivery.PipelineConfig{}, newVendor())
	h.dead.Fail(errDown)
	if _, err := h.p.ReplayDeadLetters(context.Background()); !errors.Is(err, errDown) {
		t.Errorf("ReplayDeadLetters = %v, want the store's error", err)
	}
}

// inboundEvent is a HubSpot-like webhook change: partial, to be read back,
// with an origin hint and the vendor's delivery id.
func inboundEvent() cdc.Event {
	return cdc.Event{
		Op: cdc.OpUpdate, Source: "hubspot", Table: "contacts",
		Key:        cdc.Row{{Name: "id", Value: json.RawMessage(`"901"`)}},
		After:      cdc.Row{{Name: "email", Value: json.RawMessage(`"bad"`)}, {Name: "name", Value: json.RawMessage(`"Ada\u0000"`)}},
		CommitTime: time.UnixMilli(1700000000123).UTC(),
		DeliveryID: "hubspot:4711", Partial: true, Refetch: true, OriginHint: "integration:cdcd",
	}
}

// Regression: a replayed inbound dead letter lost its inbound block
// (partial, refetch, origin hint), so the writer skipped the read-back and
// the own-write check. The replayed record's event must be the original.
func TestReplayedInboundLetterIsTheOriginalChange(t *testing.T) {
	t.Parallel()
	for _, unmappable := range []bool{false, true} {
		v := newVendor()
		var broken atomic.Bool
		broken.Store(true)
		rejecting(v, &broken)
		h := newHarness(t, delivery.PipelineConfig{}, v)
		e := inboundEvent()
		if unmappable {
			h.m.broken.Store(true)
			e.After = append(e.After, cdc.Field{Name: "bad", Value: json.RawMessage(`1`)})
		}
		h.write(t, e)
		if n := len(h.dead.Letters()); n != 1 {
			t.Fatalf("%d dead letters, want 1", n)
		}
		broken.Store(false)
		h.m.broken.Store(false)
		h.dead.AskReplay("contacts-to-crm")
		if n := replay(t, h); n != 1 {
			t.Fatalf("replayed %d, want 1", n)
		}
		recs := v.records()
		if len(recs) != 1 {
			t.Fatalf("vendor got %d records, want 1", len(recs))
		}
		if got := *recs[0].Event; !reflect.DeepEqual(got, e) {
			t.Errorf("unmappable=%v: replayed event\n%+v\nwant the original\n%+v", unmappable, got, e)
		}
		if recs[0].Key != `{"id":"901"}` || recs[0].Op != cdc.OpUpdate {
			t.Errorf("replayed record %+v", recs[0])
		}
	}
}

// TestReplayWaitingForARetryingWriteStopsWithCtx: a replay waits for the
// Write in progress (its record retrying) only until its ctx ends.
func TestReplayWaitingForARetryingWriteStopsWithCtx(t *testing.T) {
	t.Parallel()
	v := newVendor()
	v.fail = func(delivery.Record, int) error { return transient("503 Service Unavailable") }
	h := newHarness(t, delivery.PipelineConfig{MaxAttempts: 1_000_000, MinBackoff: 50 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}, v)
	e := ev(10, 0, 1, cdc.OpCreate, "email=a")
	wctx, stopWrite := context.WithCancel(context.Background())
	written := make(chan error, 1)
	go func() { written <- h.p.Write(wctx, []cdc.Event{e}) }()
	waitFor(t, "the record to be retried", func() bool { return len(v.attemptTimes(e.ID())) >= 2 })

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := h.p.ReplayDeadLetters(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReplayDeadLetters behind a retrying Write: %v, want its ctx's deadline", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("ReplayDeadLetters returned %s after its ctx ended", took)
	}
	stopWrite()
	if err := <-written; !errors.Is(err, context.Canceled) {
		t.Fatalf("Write after its ctx ended: %v", err)
	}
}
