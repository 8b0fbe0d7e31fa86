package imports_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/sinks/hubspot"
	"github.com/cdcd-dev/cdcd/sources/imports"
	"github.com/cdcd-dev/cdcd/sources/webhook"
	fake "github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

// intake records what it accepted, dropping delivery ids it holds
// already as cdcd.inbox does.
type intake struct {
	mu      sync.Mutex
	seen    map[string]bool
	changes []webhook.Change
	calls   int
	fail    func(call int) error
}

func (in *intake) Accept(_ context.Context, system string, changes []webhook.Change) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.calls++
	if in.fail != nil {
		if err := in.fail(in.calls); err != nil {
			return err
		}
	}
	if in.seen == nil {
		in.seen = map[string]bool{}
	}
	for _, c := range changes {
		if c.Source != system {
			return fmt.Errorf("change of %s accepted for %s", c.Source, system)
		}
		if !in.seen[c.DeliveryID] {
			in.seen[c.DeliveryID] = true
			in.changes = append(in.changes, c)
		}
	}
	return nil
}

func newLister(t *testing.T, srv *fake.Server) *hubspot.Writer {
	t.Helper()
	c := hubspot.NewConfig()
	c.BaseURL, c.Token, c.Object = srv.URL(), "pat-test", "contacts"
	c.Rate.Per = time.Second // the double's window below
	c.Timeout = 2 * time.Second
	w, err := hubspot.New("crm", c, zerolog.New(zerolog.NewTestWriter(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// hostile are property values a contact may hold.
var hostile = []string{"O'Brien \"the\" \\ one", "null", "", "line\nbreak", "ünïcødé ✓", "<script>x</script>", "   "}

func seed(srv *fake.Server, n int) map[string]bool {
	ids := map[string]bool{}
	for i := range n {
		props := map[string]string{"email": fmt.Sprintf("c%d@example.com", i), "firstname": hostile[i%len(hostile)]}
		if i%3 == 0 {
			props["lastname"] = fmt.Sprintf("L%d", i) // optional: often missing
		}
		ids[srv.Insert("contacts", props)] = true
	}
	return ids
}

func quick(job string) imports.Config {
	return imports.Config{System: "crm", Object: "contacts", Fields: []string{"email", "firstname", "lastname"}, Job: job,
		MaxAttempts: 50, BackoffMin: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond}
}

// TestRunPagesThroughFaults lists every contact of a double that fails
// a fifth of its calls (429, 5xx, hang-ups) and limits the rate: each
// record is handed over once, with its fields, id and updatedAt, and the
// cursor is saved after every page.
func TestRunPagesThroughFaults(t *testing.T) {
	t.Parallel()
	srv := fake.New(fake.Options{Limit: 20, Window: time.Second, Seed: 7,
		Faults: fake.Faults{Rate: 0.2, Kinds: []fake.Fault{fake.Fault429, fake.Fault500, fake.Fault502, fake.Fault503, fake.FaultHangup}}})
	t.Cleanup(srv.Close)
	want := seed(srv, 750)
	in := &intake{}
	var cursors []string
	var counted int
	save := func(_ context.Context, next string, n int) error {
		cursors = append(cursors, next)
		counted += n
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := imports.Run(ctx, quick("j1"), newLister(t, srv), in, "", save, zerolog.New(zerolog.NewTestWriter(t))); err != nil {
		t.Fatal(err)
	}
	if len(cursors) != 8 || cursors[7] != "" || counted != 750 {
		t.Fatalf("saved %d cursors (%q last), %d records; want 8 pages ending with \"\", 750 records", len(cursors), cursors[len(cursors)-1], counted)
	}
	got := map[string]bool{}
	for _, c := range in.changes {
		id := vendorID(c.Event)
		if got[id] {
			t.Fatalf("contact %s handed over twice", id)
		}
		got[id] = true
		o, _ := srv.Get("contacts", id)
		if c.Op != cdc.OpRead || c.Table != "contacts" || !c.CommitTime.Equal(o.UpdatedAt) {
			t.Fatalf("change %+v: want op r of contacts at %s", c.Event, o.UpdatedAt)
		}
		var first string
		if v, _ := c.After.Get("firstname"); json.Unmarshal(v, &first) != nil || first != o.Properties["firstname"] {
			t.Fatalf("contact %s firstname %s, want %q", id, v, o.Properties["firstname"])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d contacts handed over, want %d", len(got), len(want))
	}
	faults := 0
	for _, r := range srv.Requests() {
		if r.Fault != 0 {
			faults++
		}
	}
	if faults == 0 {
		t.Fatal("the double injected no fault; the test proves nothing")
	}
}

// TestRunResumesFromSavedCursor stops an import when the intake fails
// for good midway, then runs it again from the cursor it saved: every
// contact arrives, and only the page in flight is listed twice.
func TestRunResumesFromSavedCursor(t *testing.T) {
	t.Parallel()
	srv := fake.New(fake.Options{Limit: -1})
	t.Cleanup(srv.Close)
	want := seed(srv, 1000)
	in := &intake{fail: func(call int) error {
		if call == 4 {
			return cdc.Permanent(errors.New("intake closed"))
		}
		return nil
	}}
	var cursor string
	saves := 0
	save := func(_ context.Context, next string, _ int) error { cursor = next; saves++; return nil }
	log := zerolog.New(zerolog.NewTestWriter(t))
	l := newLister(t, srv)
	if err := imports.Run(context.Background(), quick("j2"), l, in, "", save, log); err == nil {
		t.Fatal("Run succeeded with an intake that failed for good")
	}
	if saves != 3 || cursor == "" {
		t.Fatalf("%d pages saved before the stop, cursor %q; want 3 and a cursor", saves, cursor)
	}
	lists := len(srv.Requests())
	in.fail = nil
	if err := imports.Run(context.Background(), quick("j2"), l, in, cursor, save, log); err != nil {
		t.Fatal(err)
	}
	if len(in.seen) != len(want) {
		t.Fatalf("%d contacts after the resume, want %d", len(in.seen), len(want))
	}
	// 10 pages in all: the first run listed 3 saved, the refused one and
	// perhaps one ahead; the resume starts at the refused one.
	reqs := srv.Requests()
	if len(reqs) > 12 {
		t.Fatalf("%d list calls for 10 pages; want at most 12", len(reqs))
	}
	resumed := false
	for _, r := range reqs[lists:] {
		resumed = resumed || strings.Contains(r.Query, "after="+cursor)
	}
	if !resumed {
		t.Fatalf("the resume did not list from the saved cursor %q", cursor)
	}
}

func vendorID(e cdc.Event) string {
	v, _ := e.Key.Get("id")
	return string(v[1 : len(v)-1])
}

// script is a Lister answering the pages it holds by cursor.
type script struct {
	mu    sync.Mutex
	pages map[string]imports.Page
	calls []string
}

func (s *script) List(_ context.Context, _ string, _ []string, cursor string) (imports.Page, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, cursor)
	p, ok := s.pages[cursor]
	if !ok {
		return imports.Page{}, cdc.Permanent(fmt.Errorf("no page at %q", cursor))
	}
	return p, nil
}

// TestRunStopsOnCursorCycle: a system whose cursors lead back to a page
// already listed (A, B, A, ...) would be listed forever; the import fails
// for good naming the cursor instead, having listed each page once.
func TestRunStopsOnCursorCycle(t *testing.T) {
	t.Parallel()
	rec := func(id string) []imports.Record { return []imports.Record{{ID: id}} }
	l := &script{pages: map[string]imports.Page{
		"":  {Records: rec("1"), Next: "A"},
		"A": {Records: rec("2"), Next: "B"},
		"B": {Records: rec("3"), Next: "A"},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := imports.Run(ctx, quick("j3"), l, &intake{}, "", func(context.Context, string, int) error { return nil }, zerolog.New(zerolog.NewTestWriter(t)))
	l.mu.Lock()
	calls := len(l.calls)
	l.mu.Unlock()
	if !cdc.IsPermanent(err) || !strings.Contains(err.Error(), `"A"`) || calls != 3 {
		t.Fatalf("Run = %v after %d list calls; want a permanent error naming cursor \"A\" after 3", err, calls)
	}
}

// TestRunRetriesSave: the store of the cursor fails twice for a moment
// (a Postgres restart): the import waits and saves again instead of
// failing its job, and the page saved late is not handed over again.
func TestRunRetriesSave(t *testing.T) {
	t.Parallel()
	srv := fake.New(fake.Options{Limit: -1})
	t.Cleanup(srv.Close)
	want := seed(srv, 350)
	in := &intake{}
	calls, saved := 0, 0
	save := func(_ context.Context, next string, n int) error {
		calls++
		if calls == 2 || calls == 3 {
			return errors.New("save cursor of job 1: FATAL: terminating connection due to administrator command (SQLSTATE 57P01)")
		}
		saved += n
		return nil
	}
	if err := imports.Run(context.Background(), quick("j4"), newLister(t, srv), in, "", save, zerolog.New(zerolog.NewTestWriter(t))); err != nil {
		t.Fatal(err)
	}
	if len(in.seen) != len(want) || saved != len(want) || in.calls != 4 {
		t.Fatalf("%d contacts handed over in %d calls, %d saved; want %d in 4 calls, all saved", len(in.seen), in.calls, saved, len(want))
	}
}
