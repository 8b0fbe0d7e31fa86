package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/sinks/vendorhttp"
	"github.com/cdcd-dev/cdcd/syncstate"
)

func TestOrderPerKeyUnderConcurrency(t *testing.T) {
	for _, batch := range []int{1, 3} {
		t.Run(fmt.Sprintf("max_batch=%d", batch), func(t *testing.T) {
			t.Parallel()
			v := newVendor()
			v.batch, v.delay = batch, time.Millisecond
			v.fail = func(r delivery.Record, attempt int) error {
				if r.Event.Pos.Index%7 == 3 && attempt == 1 { // holds back the rest of its key
					return transient("HTTP 503")
				}
				return nil
			}
			h := newHarness(t, delivery.PipelineConfig{Concurrency: 4}, v)
			var events []cdc.Event
			want := map[int][]string{}
			for i := range 120 {
				key := i % 10
				e := ev(100, uint32(i), key, cdc.OpUpdate, fmt.Sprintf("n=%d", i))
				events = append(events, e)
				want[key] = append(want[key], e.ID())
			}
			h.write(t, events...)
			for key, ids := range want {
				if got := v.appliedTo(key); !slices.Equal(got, ids) {
					t.Errorf("key %d applied %v, want %v", key, got, ids)
				}
			}
			if v.maxActive < 2 || v.maxActive > 4 {
				t.Errorf("%d calls at once, want 2..4", v.maxActive)
			}
		})
	}
}

func TestCoalescing(t *testing.T) {
	tests := []struct {
		name   string
		link   bool // the record was synced before (ext-0)
		events []cdc.Event
		op     cdc.Op
		fields map[string]any
		extID  string
	}{
		{
			name:   "create then updates stays a create with the latest fields",
			events: []cdc.Event{ev(1, 0, 1, cdc.OpCreate, "a=1", "b=1"), ev(2, 0, 1, cdc.OpUpdate, "a=2", "b=2"), ev(3, 0, 1, cdc.OpUpdate, "a=3", "b=3")},
			op:     cdc.OpCreate, fields: map[string]any{"a": "3", "b": "3"},
		},
		{
			name: "updates merge; a field the later change lacks keeps its value", link: true,
			events: []cdc.Event{ev(1, 0, 1, cdc.OpUpdate, "a=1", "big=toast"), ev(2, 0, 1, cdc.OpUpdate, "a=2")},
			op:     cdc.OpUpdate, fields: map[string]any{"a": "2", "big": "toast"}, extID: "ext-0",
		},
		{
			name: "update then delete is a delete", link: true,
			events: []cdc.Event{ev(1, 0, 1, cdc.OpUpdate, "a=1"), ev(2, 0, 1, cdc.OpDelete)},
			op:     cdc.OpDelete, extID: "ext-0",
		},
		{
			name: "delete then create is that create alone", link: true,
			events: []cdc.Event{ev(1, 0, 1, cdc.OpUpdate, "a=1", "old=x"), ev(2, 0, 1, cdc.OpDelete), ev(3, 0, 1, cdc.OpCreate, "a=2")},
			op:     cdc.OpCreate, fields: map[string]any{"a": "2"}, extID: "ext-0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := newVendor()
			h := newHarness(t, delivery.PipelineConfig{Coalesce: true}, v)
			if tt.link {
				h.links.Seed(syncstate.Link{System: "crm", Object: "contacts", Table: "public.contacts", Key: keyOf(1), ExternalID: "ext-0", Base: map[string]any{}})
				v.state["ext-0"], v.byKey[keyOf(1)] = map[string]any{}, "ext-0"
			}
			events := append(slices.Clone(tt.events), ev(9, 0, 2, cdc.OpCreate, "a=other"))
			h.write(t, events...)

			last := tt.events[len(tt.events)-1].ID()
			var got []delivery.Record
			for _, r := range v.records() {
				if r.Key == keyOf(1) {
					got = append(got, r)
				}
			}
			if len(got) != 1 {
				t.Fatalf("key 1 written %d times, want once", len(got))
			}
			r := got[0]
			if r.Event.ID() != last || r.Op != tt.op || r.ExternalID != tt.extID || !reflect.DeepEqual(r.Fields, tt.fields) {
				t.Errorf("written %v %q event %s fields %v; want %v %q event %s fields %v",
					r.Op, r.ExternalID, r.Event.ID(), r.Fields, tt.op, tt.extID, last, tt.fields)
			}
			for _, e := range tt.events[:len(tt.events)-1] {
				out := h.audit.Outcomes(e.ID())
				if len(out) != 1 || out[0].Status != syncstate.StatusSkipped || out[0].Error != "coalesced into "+last {
					t.Errorf("event %s audited %+v, want skipped, coalesced into %s", e.ID(), out, last)
				}
			}
			if got := h.statuses(last); !slices.Equal(got, []string{"delivered#1"}) {
				t.Errorf("latest event audited %v", got)
			}
			if n := h.counter(t, "cdcd_sink_events_total", map[string]string{"result": "skipped"}); n != float64(len(tt.events)-1) {
				t.Errorf("skipped metric %v, want %d", n, len(tt.events)-1)
			}
		})
	}
}

// Compare-and-set writers (Shopify inventory) compare against each change's
// previous value, so merging 10→8 and 8→5 into "set 5 if 8" would fail
// against a store that still holds 10: their changes are never coalesced.
func TestNoCoalescingForWritersThatNeedEveryChange(t *testing.T) {
	v := newVendor()
	v.every = true
	h := newHarness(t, delivery.PipelineConfig{Coalesce: true}, v)
	events := []cdc.Event{ev(1, 0, 1, cdc.OpCreate, "a=1"), ev(2, 0, 1, cdc.OpUpdate, "a=2"), ev(3, 0, 1, cdc.OpUpdate, "a=3")}
	h.write(t, events...)
	var got, want []string
	for _, r := range v.records() {
		got = append(got, r.Event.ID())
	}
	for i := range events {
		want = append(want, events[i].ID())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("written %v, want every change in order %v", got, want)
	}
}

// TestCoalescedRecordsCarryTheLinkedID checks the external ids the vendor
// sees when coalesced changes are delivered, a delete-then-create included.
func TestCoalescedRecordsCarryTheLinkedID(t *testing.T) {
	t.Parallel()
	v := newVendor()
	h := newHarness(t, delivery.PipelineConfig{Coalesce: true}, v)
	h.write(t, ev(1, 0, 1, cdc.OpCreate, "a=1"), ev(1, 1, 1, cdc.OpUpdate, "a=2"))
	h.write(t, ev(2, 0, 1, cdc.OpUpdate, "a=3"), ev(2, 1, 1, cdc.OpDelete))
	h.write(t, ev(3, 0, 1, cdc.OpCreate, "a=4"), ev(3, 1, 1, cdc.OpUpdate, "a=5"))
	var got []string
	for _, r := range v.records() {
		got = append(got, fmt.Sprintf("%v:%s", r.Op, r.ExternalID))
	}
	if want := []string{"c:", "d:ext-1", "c:"}; !slices.Equal(got, want) {
		t.Errorf("vendor saw %v, want %v", got, want)
	}
	if f := v.fields(1); f["a"] != "5" {
		t.Errorf("vendor holds %v, want a=5", f)
	}
}

func TestWithoutCoalescingEveryChangeIsWritten(t *testing.T) {
	t.Parallel()
	v := newVendor()
	h := newHarness(t, delivery.PipelineConfig{}, v)
	events := []cdc.Event{ev(1, 0, 1, cdc.OpCreate, "a=1"), ev(1, 1, 1, cdc.OpUpdate, "a=2"), ev(1, 2, 1, cdc.OpDelete), ev(1, 3, 1, cdc.OpCreate, "a=3")}
	h.write(t, events...)
	var want []string
	for _, e := range events {
		want = append(want, e.ID())
	}
	if got := v.appliedTo(1); !slices.Equal(got, want) {
		t.Errorf("applied %v, want %v", got, want)
	}
	// The update and delete carry the id the create got; the create after
	// the delete carries none.
	var ids []string
	for _, r := range v.records() {
		ids = append(ids, r.ExternalID)
	}
	if want := []string{"", "ext-1", "ext-1", ""}; !slices.Equal(ids, want) {
		t.Errorf("external ids written %q, want %q", ids, want)
	}
	if f := v.fields(1); f["a"] != "3" || v.creates[keyOf(1)] != 2 {
		t.Errorf("vendor holds %v after %d creates", f, v.creates[keyOf(1)])
	}
}

func TestFilteredEventsAreSkippedAndAudited(t *testing.T) {
	t.Parallel()
	v := newVendor()
	h := newHarness(t, delivery.PipelineConfig{}, v)
	e := ev(1, 0, 1, cdc.OpUpdate, "skip=yes")
	h.write(t, e)
	if got := v.records(); len(got) != 0 {
		t.Errorf("vendor got %d records", len(got))
	}
	out := h.audit.Outcomes(e.ID())
	if len(out) != 1 || out[0].Status != syncstate.StatusSkipped || out[0].Error != "filtered" {
		t.Errorf("audit %+v, want skipped: filtered", out)
	}
}

func TestRetriesThenSuccess(t *testing.T) {
	t.Parallel()
	v := newVendor()
	v.fail = func(_ delivery.Record, attempt int) error {
		if attempt <= 2 {
			return transient("HTTP 502 bad gateway")
		}
		return nil
	}
	h := newHarness(t, delivery.PipelineConfig{}, v)
	e := ev(5, 0, 1, cdc.OpCreate, "a=1")
	h.write(t, e)
	if got, want := h.statuses(e.ID()), []string{"retried#1", "retried#2", "delivered#3"}; !slices.Equal(got, want) {
		t.Errorf("audit %v, want %v", got, want)
	}
	if out := h.audit.Outcomes(e.ID()); out[0].Error != "HTTP 502 bad gateway" || out[2].Latency <= 0 {
		t.Errorf("audit rows %+v: want the error on retries and a latency on delivery", out)
	}
	if n := h.counter(t, "cdcd_sink_events_total", map[string]string{"result": "retried"}); n != 2 {
		t.Errorf("retried metric %v, want 2", n)
	}
	if f := v.fields(1); f["a"] != "1" {
		t.Errorf("vendor holds %v", f)
	}
}

func TestLinksHoldExternalIDAndBase(t *testing.T) {
	t.Parallel()
	v := newVendor()
	h := newHarness(t, delivery.PipelineConfig{}, v)
	h.write(t, ev(0x10, 0, 1, cdc.OpCreate, "email=a@b.c", "name=Ada"))
	link, ok := h.links.Link(refOf(1))
	if !ok {
		t.Fatal("no link after create")
	}
	want := map[string]any{"email": "a@b.c", "name": "Ada"}
	if link.ExternalID != "ext-1" || !reflect.DeepEqual(link.Base, want) || link.LSN != 0x10 || link.Version == "" {
		t.Errorf("link %+v, want ext-1, base %v, LSN 0x10 and a version", link, want)
	}

	h.write(t, ev(0x20, 0, 1, cdc.OpUpdate, "email=a@b.c", "name=Ada L."))
	if r := v.records()[1]; r.ExternalID != "ext-1" {
		t.Errorf("update written with id %q, want ext-1 from the link", r.ExternalID)
	}
	h.write(t, ev(0x30, 0, 1, cdc.OpDelete))
	link, _ = h.links.Link(refOf(1))
	if link.ExternalID != "ext-1" || link.Base != nil || link.LSN != 0x30 {
		t.Errorf("link after delete %+v, want a tombstone: ext-1, nil base, LSN 0x30", link)
	}
	h.write(t, ev(0x40, 0, 1, cdc.OpCreate, "email=a@b.c", "name=Ada again"))
	if r := v.records()[3]; r.ExternalID != "" {
		t.Errorf("create after delete written with id %q, want none", r.ExternalID)
	}
	if link, _ = h.links.Link(refOf(1)); link.ExternalID != "ext-2" || link.Base["name"] != "Ada again" {
		t.Errorf("link after re-create %+v", link)
	}
	if n := h.links.Gets(); n != 4 {
		t.Errorf("%d link lookups for 4 writes, want one each", n)
	}
}

func TestPermanentErrorIsDeadLetteredAndAcknowledged(t *testing.T) {
	t.Parallel()
	v := newVendor()
	v.fail = func(r delivery.Record, _ int) error {
		if r.Fields["email"] == "not-an-email" {
			return vendorhttp.Classify(400, nil, []byte(`{"status":"error","message":"Property values were not valid: email"}`), "upsert contacts")
		}
		return nil
	}
	h := newHarness(t, delivery.PipelineConfig{}, v)
	bad := ev(7, 0, 1, cdc.OpCreate, "email=not-an-email")
	next := ev(8, 0, 1, cdc.OpUpdate, "email=a@b.c")
	h.write(t, bad, next, ev(7, 1, 2, cdc.OpCreate, "email=x@y.z")) // returns nil: all settled

	letters := h.dead.Letters()
	if len(letters) != 1 {
		t.Fatalf("%d dead letters, want 1", len(letters))
	}
	dl := letters[0]
	wantErr := "upsert contacts: HTTP 400: Property values were not valid: email"
	if dl.EventID != bad.ID() || dl.Error != wantErr || dl.Attempts != 1 || dl.Pipeline != "contacts-to-crm" ||
		dl.Key != keyOf(1) || dl.Table != "public.contacts" || dl.Op != cdc.OpCreate || !strings.Contains(string(dl.Record), "not-an-email") ||
		!strings.Contains(string(dl.Event), `"lsn":7`) {
		t.Errorf("dead letter %+v", dl)
	}
	if got := h.statuses(bad.ID()); !slices.Equal(got, []string{"dead_lettered#1"}) {
		t.Errorf("audit %v", got)
	}
	if f := v.fields(1); f["email"] != "a@b.c" {
		t.Errorf("the later change to the key was not delivered: %v", f)
	}
	if n := h.counter(t, "cdcd_sink_events_total", map[string]string{"result": "dead_lettered"}); n != 1 {
		t.Errorf("dead_lettered metric %v", n)
	}
}

func TestRetriesExhaustedAreDeadLettered(t *testing.T) {
	t.Parallel()
	v := newVendor()
	v.fail = func(_ delivery.Record, attempt int) error { return fmt.Errorf("HTTP 503 attempt %d", attempt) }
	h := newHarness(t, delivery.PipelineConfig{MaxAttempts: 3}, v)
	e := ev(1, 0, 1, cdc.OpCreate, "a=1")
	h.write(t, e)
	letters := h.dead.Letters()
	if len(letters) != 1 || letters[0].Attempts != 3 || letters[0].Error != "HTTP 503 attempt 3" {
		t.Fatalf("dead letters %+v, want one after 3 attempts with the last error", letters)
	}
	if got, want := h.statuses(e.ID()), []string{"retried#1", "retried#2", "dead_lettered#3"}; !slices.Equal(got, want) {
		t.Errorf("audit %v, want %v", got, want)
	}
}

func TestMaxAgeDeadLetters(t *testing.T) {
	t.Parallel()
	v := newVendor()
	v.fail = func(delivery.Record, int) error { return transient("timeout") }
	h := newHarness(t, delivery.PipelineConfig{MaxAttempts: 1_000_000, MaxAge: 30 * time.Millisecond}, v)
	start := time.Now()
	h.write(t, ev(1, 0, 1, cdc.OpCreate, "a=1"))
	if len(h.dead.Letters()) != 1 {
		t.Fatal("not dead-lettered")
	}
	if took := time.Since(start); took < 30*time.Millisecond || took > 5*time.Second {
		t.Errorf("gave up after %v, want just past MaxAge", took)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	v := newVendor()
	const wait = 150 * time.Millisecond
	v.fail = func(_ delivery.Record, attempt int) error {
		if attempt == 1 {
			return cdc.RetryAfter(errors.New("HTTP 429"), wait)
		}
		return nil
	}
	h := newHarness(t, delivery.PipelineConfig{}, v) // backoff 1..5ms alone would retry sooner
	e := ev(1, 0, 1, cdc.OpCreate, "a=1")
	h.write(t, e)
	at := v.attemptTimes(e.ID())
	if len(at) != 2 {
		t.Fatalf("%d attempts, want 2", len(at))
	}
	if gap := at[1].Sub(at[0]); gap < wait {
		t.Errorf("retried after %v, want at least %v", gap, wait)
	}
}

// TestWholeCallFailureAppliesToAllRecords covers a timeout after the vendor
// applied the call: every record is retried, and the upsert keeps one
// remote record per key.
func TestWholeCallFailureAppliesToAllRecords(t *testing.T) {
	t.Parallel()
	v := newVendor()
	v.batch = 10
	v.callFail = func(call int) (error, bool) {
		if call == 1 {
			return context.DeadlineExceeded, true
		}
		return nil, false
	}
	h := newHarness(t, delivery.PipelineConfig{}, v)
	var events []cdc.Event
	for k := range 5 {
		events = append(events, ev(1, uint32(k), k, cdc.OpCreate, "a=1"))
	}
	h.write(t, events...)
	for k := range 5 {
		if got := h.statuses(events[k].ID()); !slices.Equal(got, []string{"retried#1", "delivered#2"}) {
			t.Errorf("key %d audit %v", k, got)
		}
		if v.creates[keyOf(k)] != 1 {
			t.Errorf("key %d created %d times", k, v.creates[keyOf(k)])
		}
	}
}

// A record with an open conflict is not synced: its changes are skipped
// and audited, until the conflict's resolution (a change of its own) goes
// through once the hold is lifted.
func TestHeldRecordsAreNotSynced(t *testing.T) {
	t.Parallel()
	v := newVendor()
	h := newHarness(t, delivery.PipelineConfig{}, v)
	h.write(t, ev(0x10, 0, 1, cdc.OpCreate, "email=a@b.c", "name=Ada"))
	link, _ := h.links.Link(refOf(1))
	link.Held = true
	h.links.Seed(link)
	h.write(t, ev(0x20, 0, 1, cdc.OpUpdate, "email=a@b.c", "name=Ann"), ev(0x20, 1, 2, cdc.OpCreate, "email=x@y.z", "name=Other"))
	if n := len(v.records()); n != 2 {
		t.Fatalf("vendor got %d records, want the create and the other record's", n)
	}
	if got := h.statuses("0/20/0"); !slices.Equal(got, []string{"skipped#0"}) {
		t.Fatalf("held change audited as %v", got)
	}
	link.Held = false
	h.links.Seed(link)
	h.write(t, ev(0x30, 0, 1, cdc.OpUpdate, "email=a@b.c", "name=Bea"))
	if r := v.records()[2]; r.Fields["name"] != "Bea" {
		t.Fatalf("after the hold: %+v", r)
	}
}

// A record a conflict holds while its change is being retried is not
// written at the next attempt.
func TestHeldWhileRetrying(t *testing.T) {
	t.Parallel()
	v := newVendor()
	h := newHarness(t, delivery.PipelineConfig{MaxAttempts: 50}, v)
	h.write(t, ev(0x10, 0, 1, cdc.OpCreate, "email=a@b.c", "name=Ada"))
	link, _ := h.links.Link(refOf(1))
	// The first attempt fails; meanwhile a conflict opens on the record.
	v.fail = func(_ delivery.Record, attempt int) error {
		if attempt > 1 {
			return nil
		}
		link.Held = true
		h.links.Seed(link)
		return transient("HTTP 503")
	}
	h.write(t, ev(0x20, 0, 1, cdc.OpUpdate, "email=a@b.c", "name=Ann"))
	if n := len(v.records()); n != 1 {
		t.Fatalf("vendor got %d records, want only the create", n)
	}
	if got := h.statuses("0/20/0"); !slices.Equal(got, []string{"retried#1", "skipped#2"}) {
		t.Fatalf("audit %v", got)
	}
}
