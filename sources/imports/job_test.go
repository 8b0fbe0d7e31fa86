package imports_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/jobs"
	"github.com/cdcd-dev/cdcd/sources/imports"
	"github.com/cdcd-dev/cdcd/sources/inbox"
	"github.com/cdcd-dev/cdcd/store"
	fake "github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

var pg cdctest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Destroy()
	os.Exit(code)
}

func jobStore(t *testing.T) *jobs.Store {
	t.Helper()
	s, _ := jobStorePool(t)
	return s
}

func jobStorePool(t *testing.T) (*jobs.Store, *pgxpool.Pool) {
	t.Helper()
	url := pg.DB(t, "imports")
	ctx := context.Background()
	st, err := store.Open(ctx, url, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return jobs.NewStore(pool), pool
}

// TestJobStopsAndResumes runs an import job, stops its runner after some
// pages and lets another runner take it: the job ends done, every contact
// was handed over, the processed count is the contacts', and the second
// runner listed from the first one's cursor (pages listed at most twice
// the one in flight and the one ahead of it).
func TestJobStopsAndResumes(t *testing.T) {
	t.Parallel()
	srv := fake.New(fake.Options{Limit: 10, Window: 100 * time.Millisecond})
	t.Cleanup(srv.Close)
	want := seed(srv, 1500)
	in := &intake{}
	h := &imports.Handler{
		Sources: map[string]imports.Source{"crm-to-contacts": {System: "crm", Object: "contacts", Fields: []string{"email"}, Lister: newLister(t, srv)}},
		Intake:  in, Log: zerolog.New(zerolog.NewTestWriter(t)),
	}
	s := jobStore(t)
	job, err := s.Create(context.Background(), jobs.Spec{Kind: imports.Kind, Pipeline: "crm-to-contacts", RequestedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	runner := func(owner string) *jobs.Runner {
		r := jobs.NewRunner(s, jobs.RunnerConfig{Owner: owner, Lease: time.Second, Poll: 20 * time.Millisecond}, zerolog.New(zerolog.NewTestWriter(t)), nil)
		r.Handle(imports.Kind, h)
		return r
	}
	ctx, stop := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { first <- runner("a").Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		j, err := s.Get(context.Background(), job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.Processed >= 400 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %+v made no progress", j)
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	ctx2, stop2 := context.WithCancel(context.Background())
	defer stop2()
	second := make(chan error, 1)
	go func() { second <- runner("b").Run(ctx2) }()
	var j *jobs.Job
	for {
		if j, err = s.Get(context.Background(), job.ID); err != nil {
			t.Fatal(err)
		}
		if j.Status == jobs.Done || j.Status == jobs.Failed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %+v did not finish", j)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop2()
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if j.Status != jobs.Done || len(in.seen) != len(want) || in.calls > 17 {
		t.Fatalf("job %s (%s), %d contacts handed over of %d in %d intake calls for 15 pages", j.Status, j.Error, len(in.seen), len(want), in.calls)
	}
	if j.Processed < 1500 || j.Processed > 1600 {
		t.Fatalf("processed %d, want 1500 and at most one page more", j.Processed)
	}
	// Pages listed, not calls: a 429 of the double's window (its limiter
	// and the writer's differ under load) lists nothing.
	listed := 0
	for _, r := range srv.Requests() {
		if r.Status == http.StatusOK {
			listed++
		}
	}
	if listed > 17 {
		t.Fatalf("%d pages listed for 15, want at most 17", listed)
	}
	var c struct{ Done bool }
	if json.Unmarshal(j.Cursor, &c) != nil || !c.Done {
		t.Fatalf("cursor %s, want done", j.Cursor)
	}
}

// TestJobRecordsRecordsItCannotHandOver imports, into a real cdcd.inbox,
// pages holding records the intake cannot take: one without an id, one
// whose id holds NUL, one whose id is 10 kB, one of 3 kB of €. Each is
// a record error of the job, in cdcd.job_errors (its id printable, cut
// between characters) and its errors count, and not counted as
// processed; the records beside them, on their page and after it, are
// imported and the job ends done.
func TestJobRecordsRecordsItCannotHandOver(t *testing.T) {
	t.Parallel()
	s, pool := jobStorePool(t)
	ctx := context.Background()
	in, err := inbox.Open(ctx, pool, inbox.Config{Deployment: "test"}, zerolog.New(zerolog.NewTestWriter(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Close)
	long := make([]byte, 5000)
	_, _ = rand.Read(long)
	longID := hex.EncodeToString(long)
	field := cdc.Row{{Name: "email", Value: json.RawMessage(`"a@example.com"`)}}
	l := &script{pages: map[string]imports.Page{
		"":  {Records: []imports.Record{{ID: "1", Fields: field}, {ID: "", Fields: field}, {ID: "a\x00b", Fields: field}, {ID: "2", Fields: field}}, Next: "A"},
		"A": {Records: []imports.Record{{ID: longID, Fields: field}, {ID: "3", Fields: field}, {ID: strings.Repeat("€", 1000), Fields: field}}},
	}}
	h := &imports.Handler{
		Sources: map[string]imports.Source{"crm-to-contacts": {System: "crm", Object: "contacts", Fields: []string{"email"}, Lister: l}},
		Intake:  in, Log: zerolog.New(zerolog.NewTestWriter(t)),
	}
	job, err := s.Create(ctx, jobs.Spec{Kind: imports.Kind, Pipeline: "crm-to-contacts", RequestedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	r := jobs.NewRunner(s, jobs.RunnerConfig{Owner: "a", Lease: 3 * time.Second, Poll: 20 * time.Millisecond}, zerolog.New(zerolog.NewTestWriter(t)), nil)
	r.Handle(imports.Kind, h)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	t.Cleanup(func() { stop(); <-done })
	var j *jobs.Job
	cdctest.Eventually(t, 60*time.Second, "the job to end", func() bool {
		if j, err = s.Get(ctx, job.ID); err != nil {
			t.Fatal(err)
		}
		return j.Status.Finished()
	})
	if j.Status != jobs.Done || j.Processed != 3 || j.Errors != 4 {
		t.Fatalf("job %s (%s), processed %d, errors %d; want done, 3 processed, 4 errors", j.Status, j.Error, j.Processed, j.Errors)
	}
	errs, err := s.Errors(ctx, job.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 4 || errs[0].Record != "" || errs[1].Record != `a\x00b` || !strings.HasPrefix(errs[2].Record, longID[:100]) ||
		errs[3].Record != strings.Repeat("€", 66)+"..." {
		t.Fatalf("record errors %+v; want the record without an id, a\\x00b, the long id and the long € one cut between characters", errs)
	}
	var ids []string
	rows, err := pool.Query(ctx, `SELECT delivery_id FROM cdcd.inbox WHERE deployment = 'test' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	if ids, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	want := []string{"import/" + strconv.FormatInt(job.ID, 10) + "/contacts/1", "import/" + strconv.FormatInt(job.ID, 10) + "/contacts/2", "import/" + strconv.FormatInt(job.ID, 10) + "/contacts/3"}
	if !slices.Equal(ids, want) {
		t.Fatalf("inbox holds %q, want %q", ids, want)
	}
}

// lostProgress is a job no longer held: every write fails with ErrLost.
type lostProgress struct{ saves int }

func (p *lostProgress) Save(context.Context, any, int64) error { p.saves++; return jobs.ErrLost }
func (p *lostProgress) SetTotal(context.Context, int64) error  { return jobs.ErrLost }
func (p *lostProgress) RecordError(context.Context, string, error, int64) error {
	return jobs.ErrLost
}

// TestJobLostStopsAtOnce: a job paused, cancelled or taken by another
// cdcd stops at its first save, which is not retried like a moment
// without the database.
func TestJobLostStopsAtOnce(t *testing.T) {
	t.Parallel()
	l := &script{pages: map[string]imports.Page{"": {Records: []imports.Record{{ID: "1"}}, Next: "A"}, "A": {Records: []imports.Record{{ID: "2"}}}}}
	h := &imports.Handler{
		Sources: map[string]imports.Source{"crm-to-contacts": {System: "crm", Object: "contacts", Lister: l}},
		Intake:  &intake{}, Log: zerolog.New(zerolog.NewTestWriter(t)),
	}
	p := &lostProgress{}
	err := h.Run(context.Background(), &jobs.Job{ID: 1, Kind: imports.Kind, Pipeline: "crm-to-contacts"}, p)
	if !errors.Is(err, jobs.ErrLost) || p.saves != 1 {
		t.Fatalf("Run = %v after %d saves; want ErrLost after one save", err, p.saves)
	}
}
