package delivery_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/delivery/deliverytest"
)

// poisonWriter fails every call that holds the record of key poison as
// a whole, for the target's sake (cdc.Transient), as the Postgres writer
// does when one record's statement meets a statement timeout or runs the
// server out of locks; it applies the records of the other calls.
type poisonWriter struct {
	poison  string
	mu      sync.Mutex
	applied map[string]bool
}

func (w *poisonWriter) Write(_ context.Context, recs []delivery.Record) ([]delivery.Result, error) {
	for _, r := range recs {
		if r.Key == w.poison {
			return nil, cdc.Transient(errors.New("canceling statement due to statement timeout"))
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]delivery.Result, len(recs))
	for i, r := range recs {
		w.applied[r.Key] = true
		out[i] = delivery.Result{ExternalID: "x" + r.Key}
	}
	return out, nil
}

func (*poisonWriter) MaxBatch() int { return 10 }

func (*poisonWriter) Close(context.Context) error { return nil }

// A call that failed as a whole for the target's sake says nothing of
// which record caused it: its records are tried again in calls of their
// own, so that a record whose own write keeps failing so holds back
// only itself, not the records it was batched with, until max_age
// dead-letters it.
func TestWholeCallTransientFailureRetriesItsRecordsAlone(t *testing.T) {
	t.Parallel()
	events := []cdc.Event{ev(1, 0, 1, cdc.OpCreate, "a=1"), ev(1, 1, 2, cdc.OpCreate, "a=2"), ev(1, 2, 3, cdc.OpCreate, "a=3"), ev(1, 3, 4, cdc.OpCreate, "a=4")}
	w := &poisonWriter{poison: string(cdc.AppendKey(nil, &events[2])), applied: map[string]bool{}}
	dead := deliverytest.NewDeadLetters()
	p, err := delivery.NewPipeline(delivery.PipelineConfig{Name: "contacts-to-crm", System: "crm", Object: "contacts",
		MaxAttempts: 2, MinBackoff: 2 * time.Millisecond, MaxBackoff: 2 * time.Millisecond, MaxAge: 500 * time.Millisecond},
		&mapper{}, w, delivery.Stores{Links: deliverytest.NewLinks(), DeadLetters: dead},
		zerolog.New(zerolog.NewTestWriter(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Write(ctx, events); err != nil {
		t.Fatal(err)
	}
	letters := dead.Letters()
	if len(letters) != 1 || letters[0].Key != w.poison {
		t.Errorf("%d dead letters, want the poison's alone", len(letters))
	}
	for i := range events {
		if key := string(cdc.AppendKey(nil, &events[i])); key != w.poison && !w.applied[key] {
			t.Errorf("record %d was held back by the record batched with it", i)
		}
	}
}
