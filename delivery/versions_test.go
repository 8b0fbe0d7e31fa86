package delivery_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/delivery/deliverytest"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// timed is a vendor whose records carry an updated-at, which its writes
// set and Touch moves, as a person editing them in the system would.
type timed struct {
	*vendor
	mu     sync.Mutex
	clock  time.Time
	remote map[string]time.Time
	reads  int
}

func (w *timed) Write(ctx context.Context, recs []delivery.Record) ([]delivery.Result, error) {
	res, err := w.vendor.Write(ctx, recs)
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range res {
		if res[i].Err == nil && res[i].ExternalID != "" {
			w.clock = w.clock.Add(time.Minute)
			w.remote[res[i].ExternalID] = w.clock
			res[i].Version = w.clock.Format(time.RFC3339Nano)
		}
	}
	return res, err
}

func (w *timed) Versions(_ context.Context, _ string, ids []string) (map[string]time.Time, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reads++
	out := map[string]time.Time{}
	for _, id := range ids {
		if t, ok := w.remote[id]; ok {
			out[id] = t
		}
	}
	return out, nil
}

func (w *timed) touch(id string) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.clock = w.clock.Add(time.Hour)
	w.remote[id] = w.clock
	return w.clock
}

// An update is not written over a change the system made since the last
// sync: the pipeline hands the record over to be compared and retries
// until the link's version caught up; a record then held by a conflict is
// skipped.
func TestRemoteMovedSinceTheLastSync(t *testing.T) {
	t.Parallel()
	w := &timed{vendor: newVendor(), clock: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC), remote: map[string]time.Time{}}
	links, audit := deliverytest.NewLinks(), &deliverytest.Audit{}
	type moved struct {
		object, id string
		at         time.Time
	}
	var mu sync.Mutex
	var told []moved
	var held bool
	cfg := delivery.PipelineConfig{Name: "contacts-to-crm", System: "crm", Object: "contacts", MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		RemoteMoved: func(_ context.Context, object, id string, at time.Time) error {
			mu.Lock()
			defer mu.Unlock()
			told = append(told, moved{object, id, at})
			// The inbound side compares the change and moves the link on.
			ref := refOf(1)
			l, _ := links.Link(ref)
			l.Version, l.Held = at.Format(time.RFC3339Nano), held
			links.Seed(l)
			return nil
		}}
	p, err := delivery.NewPipeline(cfg, &mapper{}, w, delivery.Stores{Links: links, DeadLetters: deliverytest.NewDeadLetters(), Audit: audit},
		zerolog.New(zerolog.NewTestWriter(t)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	write := func(events ...cdc.Event) {
		t.Helper()
		if err := p.Write(context.Background(), events); err != nil {
			t.Fatal(err)
		}
	}
	write(ev(0x10, 0, 1, cdc.OpCreate, "email=a@b.c", "name=Ada"))
	write(ev(0x20, 0, 1, cdc.OpUpdate, "email=a@b.c", "name=Ann")) // not moved: written
	if n := len(w.records()); n != 2 || len(told) != 0 {
		t.Fatalf("%d records written, %d handed over", n, len(told))
	}

	at := w.touch("ext-1")
	write(ev(0x30, 0, 1, cdc.OpUpdate, "email=a@b.c", "name=Amy"))
	if len(told) != 1 || told[0] != (moved{"contacts", "ext-1", at}) {
		t.Fatalf("handed over %+v", told)
	}
	if recs := w.records(); len(recs) != 3 || recs[2].Fields["name"] != "Amy" {
		t.Fatalf("the update was not written after the comparison: %+v", recs)
	}
	var statuses []syncstate.Status
	for _, o := range audit.Outcomes("0/30/0") {
		statuses = append(statuses, o.Status)
	}
	if !slices.Equal(statuses, []syncstate.Status{syncstate.StatusRetried, syncstate.StatusDelivered}) {
		t.Fatalf("audit %v", statuses)
	}

	// This time the comparison finds a conflict that holds the record.
	held = true
	w.touch("ext-1")
	write(ev(0x40, 0, 1, cdc.OpUpdate, "email=a@b.c", "name=Abe"))
	if recs := w.records(); len(recs) != 3 {
		t.Fatalf("a held record was written: %+v", recs[len(recs)-1])
	}
	if o := audit.Outcomes("0/40/0"); len(o) == 0 || o[len(o)-1].Status != syncstate.StatusSkipped {
		t.Fatalf("audit %+v", o)
	}
}

// patching is a vendor whose updates change only the fields they carry.
type patching struct{ *vendor }

func (patching) PatchesFields() bool { return true }

// Updates to a PATCH-style system carry only what changed since the last
// sync, so a field changed in the system meanwhile is not written over.
func TestPatchesCarryOnlyChangedFields(t *testing.T) {
	t.Parallel()
	v := newVendor()
	links, audit := deliverytest.NewLinks(), &deliverytest.Audit{}
	p, err := delivery.NewPipeline(delivery.PipelineConfig{Name: "contacts-to-crm", System: "crm", Object: "contacts"}, &mapper{}, patching{v},
		delivery.Stores{Links: links, DeadLetters: deliverytest.NewDeadLetters(), Audit: audit}, zerolog.New(zerolog.NewTestWriter(t)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	write := func(events ...cdc.Event) {
		t.Helper()
		if err := p.Write(context.Background(), events); err != nil {
			t.Fatal(err)
		}
	}
	write(ev(0x10, 0, 1, cdc.OpCreate, "email=a@b.c", "name=Ada", "city=Paris"))
	write(ev(0x20, 0, 1, cdc.OpUpdate, "email=a@b.c", "name=Ann", "city=Paris"))
	recs := v.records()
	if len(recs) != 2 || len(recs[0].Fields) != 3 || len(recs[1].Fields) != 1 || recs[1].Fields["name"] != "Ann" {
		t.Fatalf("records written %+v", recs)
	}
	if l, _ := links.Link(refOf(1)); l.Base["city"] != "Paris" || l.Base["name"] != "Ann" {
		t.Fatalf("the base lost the fields not written: %+v", l.Base)
	}
	write(ev(0x30, 0, 1, cdc.OpUpdate, "email=a@b.c", "name=Ann", "city=Paris"))
	if n := len(v.records()); n != 2 {
		t.Fatalf("an unchanged record was written again (%d writes)", n)
	}
	if o := audit.Outcomes("0/30/0"); len(o) != 1 || o[0].Status != syncstate.StatusSkipped {
		t.Fatalf("audit %+v", o)
	}
}
