package imports_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/jobs"
	"github.com/cdcd-dev/cdcd/sources/imports"
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
	return jobs.NewStore(pool)
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
	if n := len(srv.Requests()); n > 17 {
		t.Fatalf("%d list calls for 15 pages, want at most 17", n)
	}
	var c struct{ Done bool }
	if json.Unmarshal(j.Cursor, &c) != nil || !c.Done {
		t.Fatalf("cursor %s, want done", j.Cursor)
	}
}
