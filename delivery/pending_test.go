package delivery_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/delivery/deliverytest"
)

// creator is a system whose creates are not idempotent (a Settler). Each
// call's records are kept; answer decides each call's fate.
type creator struct {
	mu     sync.Mutex
	calls  [][]delivery.Record
	answer func(ctx context.Context, call int, recs []delivery.Record) ([]delivery.Result, error)
}

func (c *creator) SettlesCreate(*delivery.Record) bool { return true }
func (c *creator) MaxBatch() int                       { return 10 }

func (c *creator) Write(ctx context.Context, recs []delivery.Record) ([]delivery.Result, error) {
	c.mu.Lock()
	c.calls = append(c.calls, recs)
	n := len(c.calls)
	c.mu.Unlock()
	return c.answer(ctx, n, recs)
}

func (c *creator) call(t *testing.T, n int) []delivery.Record {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.calls) < n {
		t.Fatalf("%d calls, want at least %d", len(c.calls), n)
	}
	return c.calls[n-1]
}

func linked(recs []delivery.Record) []delivery.Result {
	res := make([]delivery.Result, len(recs))
	for i, r := range recs {
		res[i].ExternalID = "ext-" + r.Key
	}
	return res
}

func settlingPipeline(t *testing.T, c *creator, links *deliverytest.Links, pending *deliverytest.PendingCreates) *delivery.Pipeline {
	t.Helper()
	cfg := delivery.PipelineConfig{Name: "contacts-to-crm", System: "crm", Object: "contacts",
		MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, MaxAttempts: 3}
	p, err := delivery.NewPipeline(cfg, &mapper{}, c, delivery.Stores{Links: links, DeadLetters: deliverytest.NewDeadLetters(),
		Audit: &deliverytest.Audit{}, Pending: pending}, zerolog.New(zerolog.NewTestWriter(t)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A create is recorded as pending before it is sent. A process stopped
// while the answer is awaited leaves it pending, so that after a restart
// the record is written Unsettled (to be looked up, not created again);
// once linked, nothing is pending.
func TestPendingCreateSurvivesRestart(t *testing.T) {
	t.Parallel()
	links, pending := deliverytest.NewLinks(), deliverytest.NewPendingCreates()
	sent := make(chan struct{})
	first := &creator{answer: func(ctx context.Context, _ int, _ []delivery.Record) ([]delivery.Result, error) {
		if len(pending.Refs()) != 2 {
			t.Errorf("pending before the call: %v, want both records", pending.Refs())
		}
		close(sent)
		<-ctx.Done() // the answer never comes: the process is stopped
		return nil, ctx.Err()
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- settlingPipeline(t, first, links, pending).Write(ctx, []cdc.Event{ev(1, 0, 1, cdc.OpCreate), ev(1, 1, 2, cdc.OpCreate)})
	}()
	<-sent
	cancel()
	if err := <-done; err == nil {
		t.Fatal("Write returned nil without an answer")
	}

	again := &creator{answer: func(_ context.Context, _ int, recs []delivery.Record) ([]delivery.Result, error) {
		return linked(recs), nil
	}}
	if err := settlingPipeline(t, again, links, pending).Write(context.Background(), []cdc.Event{ev(1, 0, 1, cdc.OpCreate), ev(1, 1, 2, cdc.OpCreate), ev(2, 0, 3, cdc.OpCreate)}); err != nil {
		t.Fatal(err)
	}
	for _, r := range again.call(t, 1) {
		if want := r.Key != keyOf(3); r.Unsettled != want {
			t.Fatalf("record %s: Unsettled %v, want %v", r.Key, r.Unsettled, want)
		}
	}
	if refs := pending.Refs(); len(refs) != 0 {
		t.Fatalf("still pending after the records were linked: %v", refs)
	}
	if l, ok := links.Link(refOf(1)); !ok || l.ExternalID != "ext-"+keyOf(1) {
		t.Fatalf("link %+v", l)
	}
}

// An error that shows nothing was applied settles the create; an unknown
// outcome keeps it pending for the retry, which is Unsettled.
func TestPendingCreateSettledByItsError(t *testing.T) {
	t.Parallel()
	links, pending := deliverytest.NewLinks(), deliverytest.NewPendingCreates()
	c := &creator{answer: func(_ context.Context, call int, recs []delivery.Record) ([]delivery.Result, error) {
		res := make([]delivery.Result, len(recs))
		for i, r := range recs {
			switch {
			case r.Key == keyOf(1):
				res[i].Err = cdc.Permanent(fmt.Errorf("HTTP 400: invalid email"))
			case call == 1:
				res[i].Err = fmt.Errorf("batch create: %w", delivery.ErrOutcomeUnknown)
			default:
				res[i].ExternalID = "ext-2"
			}
		}
		return res, nil
	}}
	if err := settlingPipeline(t, c, links, pending).Write(context.Background(), []cdc.Event{ev(1, 0, 1, cdc.OpCreate), ev(1, 1, 2, cdc.OpCreate)}); err != nil {
		t.Fatal(err)
	}
	if r := c.call(t, 2); len(r) != 1 || r[0].Key != keyOf(2) || !r[0].Unsettled {
		t.Fatalf("retry %+v, want record 2 Unsettled", r)
	}
	if refs := pending.Refs(); len(refs) != 0 {
		t.Fatalf("still pending: %v", refs)
	}
}

// A create answered with an id no link can hold (NUL in it) is
// dead-lettered, not linked; it was applied, so it stays pending: a
// replay of the letter looks the record up rather than create it again.
func TestUnlinkableIDKeepsItsCreatePending(t *testing.T) {
	t.Parallel()
	links, pending := deliverytest.NewLinks(), deliverytest.NewPendingCreates()
	c := &creator{answer: func(_ context.Context, _ int, recs []delivery.Record) ([]delivery.Result, error) {
		res := linked(recs)
		res[0].ExternalID = "a\x00b"
		return res, nil
	}}
	if err := settlingPipeline(t, c, links, pending).Write(context.Background(), []cdc.Event{ev(1, 0, 1, cdc.OpCreate), ev(1, 1, 2, cdc.OpCreate)}); err != nil {
		t.Fatal(err)
	}
	if l, ok := links.Link(refOf(1)); ok {
		t.Fatalf("row 1 linked to %q", l.ExternalID)
	}
	if _, ok := links.Link(refOf(2)); !ok {
		t.Fatal("row 2 not linked")
	}
	if refs := pending.Refs(); len(refs) != 1 || refs[0] != refOf(1) {
		t.Fatalf("pending %v, want row 1's create", refs)
	}
}
