package delivery_test

import (
	"context"
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

// gatedLinks holds its first Put until open is closed.
type gatedLinks struct {
	*deliverytest.Links
	once    sync.Once
	waiting chan struct{} // closed when the first Put waits
	open    chan struct{}
}

func (g *gatedLinks) Put(ctx context.Context, links []syncstate.Link) error {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.waiting)
		select {
		case <-g.open:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.Links.Put(ctx, links)
}

// overlapping starts a Write of first whose links are held when stored,
// waits for it to store them, then starts a Write of second. It returns
// the Writes' errors, in order, and opens the gate once release is called.
func overlapping(t *testing.T, v *vendor, first, second []cdc.Event) (p *delivery.Pipeline, links *gatedLinks, release func(), errs [2]chan error) {
	t.Helper()
	links = &gatedLinks{Links: deliverytest.NewLinks(), waiting: make(chan struct{}), open: make(chan struct{})}
	p, err := delivery.NewPipeline(delivery.PipelineConfig{Name: "contacts-to-crm", System: "crm", Object: "contacts", Concurrency: 4},
		&mapper{}, v, delivery.Stores{Links: links, DeadLetters: deliverytest.NewDeadLetters(), Audit: &deliverytest.Audit{}},
		zerolog.New(zerolog.NewTestWriter(t)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	errs = [2]chan error{make(chan error, 1), make(chan error, 1)}
	go func() { errs[0] <- p.Write(ctx, first) }()
	select {
	case <-links.waiting:
	case <-ctx.Done():
		t.Fatal("the first Write never stored its links")
	}
	go func() { errs[1] <- p.Write(ctx, second) }()
	var once sync.Once
	release = func() { once.Do(func() { close(links.open) }) }
	t.Cleanup(release)
	return p, links, release, errs
}

// The next Write's calls start while the last bookkeeping of the Write
// before it is being stored, when they share no record; each returns only
// once its own bookkeeping is stored.
func TestNextWriteCallsWhileBookkeepingIsStored(t *testing.T) {
	t.Parallel()
	v := newVendor()
	first := []cdc.Event{ev(100, 0, 1, cdc.OpCreate, "n=a"), ev(100, 1, 2, cdc.OpCreate, "n=b")}
	second := []cdc.Event{ev(200, 0, 3, cdc.OpCreate, "n=c"), ev(200, 1, 4, cdc.OpCreate, "n=d")}
	_, links, release, errs := overlapping(t, v, first, second)
	waitFor(t, "the second Write's records written while the first's links wait", func() bool {
		return len(v.appliedTo(3)) == 1 && len(v.appliedTo(4)) == 1
	})
	if err := <-errs[1]; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs[0]:
		t.Fatalf("the first Write returned (%v) before its links were stored", err)
	default:
	}
	for key := 1; key <= 2; key++ {
		if l, ok := links.Link(refOf(key)); ok {
			t.Fatalf("key %d linked (%+v) while the first Put waits", key, l)
		}
	}
	release()
	if err := <-errs[0]; err != nil {
		t.Fatal(err)
	}
	for key := 1; key <= 4; key++ {
		if l, ok := links.Link(refOf(key)); !ok || l.ExternalID == "" {
			t.Errorf("key %d: link %+v, %v; want one with an external id", key, l, ok)
		}
	}
}

// A record the Write before wrote is written again only once that
// Write's bookkeeping is stored: it is read back with its link, and
// updated instead of created again.
func TestNextWriteOfTheSameRecordWaitsForItsLink(t *testing.T) {
	t.Parallel()
	v := newVendor()
	first := []cdc.Event{ev(100, 0, 1, cdc.OpCreate, "n=a")}
	second := []cdc.Event{ev(200, 0, 1, cdc.OpUpdate, "n=b"), ev(200, 1, 2, cdc.OpCreate, "n=c")}
	_, links, release, errs := overlapping(t, v, first, second)
	time.Sleep(50 * time.Millisecond) // time for a wrong second Write to call the vendor
	if got := v.appliedTo(2); len(got) != 0 {
		t.Fatalf("the second Write called the vendor (%v) before the first's links were stored", got)
	}
	release()
	for _, ch := range errs {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	createdThenUpdated(t, v, links, 200)
}

// A Write waits for the bookkeeping of whichever earlier Write shares a
// record with it, not only the last one's.
func TestWriteWaitsForAnyEarlierWriteOfItsRecords(t *testing.T) {
	t.Parallel()
	v := newVendor()
	first := []cdc.Event{ev(100, 0, 1, cdc.OpCreate, "n=a")}
	second := []cdc.Event{ev(200, 0, 2, cdc.OpCreate, "n=b")}
	third := []cdc.Event{ev(300, 0, 1, cdc.OpUpdate, "n=c")}
	p, links, release, errs := overlapping(t, v, first, second)
	if err := <-errs[1]; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	third1 := make(chan error, 1)
	go func() { third1 <- p.Write(ctx, third) }()
	time.Sleep(50 * time.Millisecond) // time for a wrong third Write to call the vendor
	if got := v.appliedTo(1); len(got) != 1 {
		t.Fatalf("key 1 written %v before the first Write's links were stored; want its create only", got)
	}
	release()
	for _, ch := range []chan error{errs[0], third1} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	createdThenUpdated(t, v, links, 300)
}

// createdThenUpdated checks that key 1 was created, then updated with the
// external id its create got, and that its link is the one of the change
// at lsn.
func createdThenUpdated(t *testing.T, v *vendor, links *gatedLinks, lsn cdc.LSN) {
	t.Helper()
	var ofKey1 []delivery.Record
	for _, r := range v.records() {
		if r.Key == keyOf(1) {
			ofKey1 = append(ofKey1, r)
		}
	}
	if len(ofKey1) != 2 || ofKey1[1].ExternalID == "" {
		t.Errorf("writes of key 1: %+v; want a create, then an update with its external id", ofKey1)
	}
	if l, _ := links.Link(refOf(1)); l.LSN != lsn {
		t.Errorf("key 1 link LSN %v, want %v (the later change)", l.LSN, lsn)
	}
}

// heldWriter holds its first call until open is closed.
type heldWriter struct {
	*vendor
	once    sync.Once
	calling chan struct{} // closed when the first call waits
	open    chan struct{}
}

func (h *heldWriter) Write(ctx context.Context, recs []delivery.Record) ([]delivery.Result, error) {
	first := false
	h.once.Do(func() { first = true })
	if first {
		close(h.calling)
		select {
		case <-h.open:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return h.vendor.Write(ctx, recs)
}

// The next Write reads its records' links while the Write before it makes
// its calls, and makes its own calls only once that one's are over.
func TestNextWriteReadsLinksWhileCallsRun(t *testing.T) {
	t.Parallel()
	w := &heldWriter{vendor: newVendor(), calling: make(chan struct{}), open: make(chan struct{})}
	links := deliverytest.NewLinks()
	p, err := delivery.NewPipeline(delivery.PipelineConfig{Name: "contacts-to-crm", System: "crm", Object: "contacts", Concurrency: 4},
		&mapper{}, w, delivery.Stores{Links: links, DeadLetters: deliverytest.NewDeadLetters(), Audit: &deliverytest.Audit{}},
		zerolog.New(zerolog.NewTestWriter(t)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var once sync.Once
	release := func() { once.Do(func() { close(w.open) }) }
	t.Cleanup(release)
	errs := [2]chan error{make(chan error, 1), make(chan error, 1)}
	go func() { errs[0] <- p.Write(ctx, []cdc.Event{ev(100, 0, 1, cdc.OpCreate, "n=a")}) }()
	select {
	case <-w.calling:
	case <-ctx.Done():
		t.Fatal("the first Write never called the vendor")
	}
	gets := links.Gets()
	go func() { errs[1] <- p.Write(ctx, []cdc.Event{ev(200, 0, 2, cdc.OpCreate, "n=b")}) }()
	waitFor(t, "the second Write's links read while the first's call waits", func() bool { return links.Gets() > gets })
	if got := w.appliedTo(2); len(got) != 0 {
		t.Fatalf("the second Write called the vendor (%v) while the first's call was in flight", got)
	}
	release()
	for _, ch := range errs {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	for key := 1; key <= 2; key++ {
		if l, ok := links.Link(refOf(key)); !ok || l.ExternalID == "" {
			t.Errorf("key %d: link %+v, %v; want one with an external id", key, l, ok)
		}
	}
}
