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
		{"dead letters", func(h *harness) { h.dead.Fail(errDown) }, ev(1, 0, 1, cdc.OpCreate, "bad=1")},
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

// TestStoreFailureStopsOtherKeys: once a store fails, no new Writer call
// starts and Write returns after the calls in flight.
func TestStoreFailureStopsOtherKeys(t *testing.T) {
	t.Parallel()
	v := newVendor()
	h := newHarness(t, delivery.PipelineConfig{Concurrency: 1}, v)
	v.fail = func(r delivery.Record, _ int) error {
		h.audit.Fail(errDown)
		return nil
	}
	events := []cdc.Event{ev(1, 0, 1, cdc.OpCreate, "a=1"), ev(1, 1, 2, cdc.OpCreate, "a=1"), ev(1, 2, 3, cdc.OpCreate, "a=1")}
	if err := h.p.Write(context.Background(), events); !errors.Is(err, errDown) {
		t.Fatalf("Write = %v", err)
	}
	if n := len(v.records()); n != 1 {
		t.Errorf("%d records written after the store failed, want only the first", n)
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
