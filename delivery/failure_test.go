package delivery_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
)

var errDown = errors.New("connection refused")

func TestStoreFailureFailsWrite(t *testing.T) {
	tests := []struct {
		name  string
		fail  func(h *harness)
		event cdc.Event
	}{
		{"links lookup", func(h *harness) { h.links.Fail(errDown) }, ev(1, 0, 1, cdc.OpCreate, "a=1")},
		{"links put", func(h *harness) { h.links.Fail(errDown) }, ev(1, 0, 1, cdc.OpCreate, "a=1")},
		{"audit", func(h *harness) { h.audit.Fail(errDown) }, ev(1, 0, 1, cdc.OpCreate, "a=1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := newVendor()
			h := newHarness(t, delivery.PipelineConfig{}, v)
			h.m.broken.Store(true)
			if tt.name == "links put" {
				v.fail = func(delivery.Record, int) error { h.links.Fail(errDown); return nil }
			} else {
				tt.fail(h)
			}
			err := h.p.Write(context.Background(), []cdc.Event{tt.event})
			if !errors.Is(err, errDown) {
				t.Fatalf("Write = %v, want the store's error", err)
			}
		})
	}
}

// Regression: when the dead-letter store refused a letter, Write failed,
// the batch came back with its attempts counted from zero and failed the
// same way, with nothing to show for it. The pipeline now says so (an
// error log, a metric, Ready) and stores the letters again until the store
// takes them; the record is not written again meanwhile.
func TestDeadLetterStoreFailureIsLoudAndKeepsAttempts(t *testing.T) {
	t.Parallel()
	v := newVendor()
	v.fail = func(delivery.Record, int) error { return transient("HTTP 503") }
	h := newHarness(t, delivery.PipelineConfig{MaxAttempts: 3}, v)
	e := ev(1, 0, 1, cdc.OpCreate, "a=1")
	h.dead.Fail(errDown)
	done := make(chan error, 1)
	go func() { done <- h.p.Write(context.Background(), []cdc.Event{e}) }()
	labels := map[string]string{"pipeline": "contacts-to-crm", "system": "crm"}
	waitFor(t, "store failures counted", func() bool {
		return h.counter(t, "cdcd_sink_dead_letter_store_failures_total", labels) >= 3
	})
	if err := h.p.Ready(); !errors.Is(err, errDown) {
		t.Errorf("Ready = %v, want the store's error", err)
	}
	if g := h.counter(t, "cdcd_sink_dead_letter_store_failing", labels); g != 1 {
		t.Errorf("failing gauge %v, want 1", g)
	}
	select {
	case err := <-done:
		t.Fatalf("Write = %v before its dead letter was stored", err)
	default:
	}

	h.dead.Fail(nil)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Write = %v once the store is back", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Write did not return once the store was back")
	}
	if letters := h.dead.Letters(); len(letters) != 1 || letters[0].Attempts != 3 || letters[0].EventID != e.ID() {
		t.Errorf("dead letters %+v, want one with 3 attempts", letters)
	}
	if n := len(v.attemptTimes(e.ID())); n != 3 {
		t.Errorf("the system saw %d attempts, want 3 (none counted again)", n)
	}
	if err := h.p.Ready(); err != nil {
		t.Errorf("Ready = %v once the store is back", err)
	}
	if g := h.counter(t, "cdcd_sink_dead_letter_store_failing", labels); g != 0 {
		t.Errorf("failing gauge %v, want 0", g)
	}

	// Shutdown while the store fails: Write returns.
	h.dead.Fail(errDown)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := h.p.Write(ctx, []cdc.Event{ev(2, 0, 2, cdc.OpCreate, "a=1")})
	if !errors.Is(err, errDown) && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Write = %v when ctx ends, want the store's error or ctx's", err)
	}
}

// TestStoreFailureStopsOtherKeys: once a store fails, no new Writer call
// starts and Write returns after the calls in flight. Calls made while the
// failing bookkeeping was being stored are at most 64 per Concurrency.
func TestStoreFailureStopsOtherKeys(t *testing.T) {
	t.Parallel()
	v := newVendor()
	h := newHarness(t, delivery.PipelineConfig{Concurrency: 1}, v)
	v.fail = func(r delivery.Record, _ int) error {
		h.audit.Fail(errDown)
		return nil
	}
	var events []cdc.Event
	for i := range 200 {
		events = append(events, ev(1, uint32(i), i+1, cdc.OpCreate, "a=1"))
	}
	if err := h.p.Write(context.Background(), events); !errors.Is(err, errDown) {
		t.Fatalf("Write = %v", err)
	}
	if n := len(v.records()); n > 64 {
		t.Errorf("%d records written after the store failed, want at most 64", n)
	}
}

func TestContextCancelStopsRetriesPromptly(t *testing.T) {
	t.Parallel()
	v := newVendor()
	v.fail = func(delivery.Record, int) error { return cdc.RetryAfter(errors.New("HTTP 429"), time.Hour) }
	h := newHarness(t, delivery.PipelineConfig{}, v)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.p.Write(ctx, []cdc.Event{ev(1, 0, 1, cdc.OpCreate, "a=1")}) }()
	waitFor(t, "the first attempt", func() bool { return len(h.audit.Outcomes("")) == 1 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Write = %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Write did not return after cancel")
	}
	if n := len(h.dead.Letters()); n != 0 {
		t.Errorf("%d dead letters after cancel, want none", n)
	}
}

func TestContextCancelStopsAWriterCall(t *testing.T) {
	t.Parallel()
	v := newVendor()
	v.delay = time.Hour
	h := newHarness(t, delivery.PipelineConfig{}, v)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := h.p.Write(ctx, []cdc.Event{ev(1, 0, 1, cdc.OpCreate, "a=1")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Write = %v, want context.DeadlineExceeded", err)
	}
	if out := h.audit.Outcomes(""); len(out) != 0 {
		t.Errorf("audited %+v for a cancelled call", out)
	}
}

func TestClosedPipelineRefusesWrites(t *testing.T) {
	t.Parallel()
	h := newHarness(t, delivery.PipelineConfig{}, newVendor())
	if err := h.p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.p.Write(context.Background(), []cdc.Event{ev(1, 0, 1, cdc.OpCreate)}); err == nil {
		t.Error("Write after Close succeeded")
	}
}

func TestNewPipelineValidates(t *testing.T) {
	t.Parallel()
	_, err := delivery.NewPipeline(delivery.PipelineConfig{MaxAttempts: -1, MinBackoff: time.Minute, MaxBackoff: time.Second},
		nil, nil, delivery.Stores{}, zerolog.Nop(), nil)
	for _, want := range []string{"name: required", "system: required", "max_attempts: must not be negative", "min_backoff 1m0s exceeds max_backoff 1s", "mapper: required", "writer: required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// TestRandomFailuresConverge is a property test: whatever the transient
// failures (30% of attempts, some whole calls timing out after applying),
// every key ends at its last event's state, created exactly once, and
// every key's changes were applied in order.
func TestRandomFailuresConverge(t *testing.T) {
	for _, coalesce := range []bool{false, true} {
		t.Run("coalesce="+strconv.FormatBool(coalesce), func(t *testing.T) {
			t.Parallel()
			seed := rand.Uint64()
			t.Logf("seed %d", seed)
			rnd := rand.New(rand.NewPCG(seed, 1)) // used by the vendor, under its lock
			gen := rand.New(rand.NewPCG(seed, 2))
			v := newVendor()
			v.batch = 8
			v.fail = func(delivery.Record, int) error {
				if rnd.IntN(10) < 3 {
					return transient("HTTP 503")
				}
				return nil
			}
			v.callFail = func(int) (error, bool) {
				if rnd.IntN(20) == 0 {
					return context.DeadlineExceeded, rnd.IntN(2) == 0
				}
				return nil, false
			}
			h := newHarness(t, delivery.PipelineConfig{Coalesce: coalesce, Concurrency: 4, MaxAttempts: 1000, MaxBackoff: 2 * time.Millisecond}, v)
			const keys, events, batch = 50, 3000, 150
			last := map[int]string{}
			order := map[int][]cdc.Position{}
			var pending []cdc.Event
			for i := range events {
				k := gen.IntN(keys)
				op := cdc.OpUpdate
				if _, ok := last[k]; !ok {
					op = cdc.OpCreate
				}
				val := strconv.Itoa(i)
				e := ev(uint64(i/10+1), uint32(i%10), k, op, "v="+val)
				last[k] = val
				order[k] = append(order[k], e.Pos)
				pending = append(pending, e)
				if len(pending) == batch || i == events-1 {
					h.write(t, pending...)
					pending = nil
				}
			}
			if n := len(h.dead.Letters()); n != 0 {
				t.Fatalf("%d dead letters", n)
			}
			for k, val := range last {
				if got := v.fields(k); !reflect.DeepEqual(got, map[string]any{"v": val}) {
					t.Errorf("key %d holds %v, want v=%s", k, got, val)
				}
				if n := v.creates[keyOf(k)]; n != 1 {
					t.Errorf("key %d created %d times", k, n)
				}
				applied := v.appliedTo(k)
				if !slices.IsSortedFunc(applied, func(a, b string) int { return cmpPos(order[k], a, b) }) {
					t.Errorf("key %d applied out of order: %v", k, applied)
				}
				if link, ok := h.links.Link(refOf(k)); !ok || link.Base["v"] != val {
					t.Errorf("key %d link %+v, want base v=%s", k, link, val)
				}
			}
		})
	}
}

// cmpPos orders two applied event ids by their position among positions;
// a retried event may be applied twice, which keeps the order.
func cmpPos(positions []cdc.Position, a, b string) int {
	return slices.IndexFunc(positions, func(p cdc.Position) bool { return p.String() == a }) -
		slices.IndexFunc(positions, func(p cdc.Position) bool { return p.String() == b })
}

// A failure the Writer marks cdc.Transient (the target's: a deadlock, a
// lost connection), of the whole call or of one record, is retried with
// backoff however many times it comes and never counts toward
// max_attempts: the record is delivered once it is gone, not
// dead-lettered. A failure of the record's own still counts.
func TestTransientFailuresAreRetriedWithoutCountingAttempts(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		set      func(v *vendor)
		wantDead bool
	}{
		{"the whole call", func(v *vendor) {
			v.callFail = func(call int) (error, bool) {
				if call <= 6 {
					return cdc.Transient(errors.New("deadlock detected")), false
				}
				return nil, false
			}
		}, false},
		{"one record", func(v *vendor) {
			v.fail = func(_ delivery.Record, attempt int) error {
				if attempt <= 6 {
					return cdc.Transient(errors.New("lock timeout"))
				}
				return nil
			}
		}, false},
		{"the record's own failures still count", func(v *vendor) {
			v.fail = func(_ delivery.Record, attempt int) error {
				if attempt <= 6 {
					return cdc.Transient(errors.New("lock timeout"))
				}
				return transient("HTTP 503")
			}
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := newVendor()
			tt.set(v)
			h := newHarness(t, delivery.PipelineConfig{MaxAttempts: 2}, v)
			e := ev(1, 0, 1, cdc.OpCreate, "a=1")
			h.write(t, e)
			dead := len(h.dead.Letters())
			if tt.wantDead {
				if dead != 1 || len(v.attemptTimes(e.ID())) != 8 {
					t.Fatalf("%d dead letters after %d tries, want 1 after 8 (6 transient, then 2 of its own)", dead, len(v.attemptTimes(e.ID())))
				}
				return
			}
			if dead != 0 || v.fields(1)["a"] != "1" {
				t.Fatalf("%d dead letters, vendor has %v; want the record delivered after its transient failures", dead, v.fields(1))
			}
		})
	}
}
