package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
)

// pages is a handler that processes pages 0..n-1 from its cursor, saving
// after each, and counts every page it processed per job.
type pages struct {
	n     int
	delay time.Duration
	mu    sync.Mutex
	seen  map[int64][]int
	fail  error // returned after the first page when set
}

func (h *pages) Run(ctx context.Context, job *Job, p Progress) error {
	next := 0
	if job.Cursor != nil {
		if err := json.Unmarshal(job.Cursor, &next); err != nil {
			return err
		}
	}
	if err := p.SetTotal(ctx, int64(h.n)); err != nil {
		return err
	}
	for ; next < h.n; next++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(h.delay):
		}
		h.mu.Lock()
		if h.seen == nil {
			h.seen = map[int64][]int{}
		}
		h.seen[job.ID] = append(h.seen[job.ID], next)
		h.mu.Unlock()
		if err := p.Save(ctx, next+1, 1); err != nil {
			return err
		}
		if h.fail != nil {
			return h.fail
		}
	}
	return nil
}

func (h *pages) pagesOf(id int64) []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]int(nil), h.seen[id]...)
}

func TestJobRunsToDoneWithCursorAndCounts(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	h := &pages{n: 5}
	r := testRunner(t, s, "a")
	r.Handle("backfill", h)
	j, err := s.Create(ctx, Spec{Kind: "backfill", Pipeline: "p", Params: map[string]string{"where": "id > 0"}, RequestedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != Queued || string(j.Params) != `{"where": "id > 0"}` {
		t.Fatalf("created %+v params %s", j, j.Params)
	}
	startRunner(t, r)
	r.Wake()
	done := waitStatus(t, s, j.ID, Done)
	if done.Processed != 5 || done.Total == nil || *done.Total != 5 || string(done.Cursor) != "5" || done.FinishedAt == nil || done.StartedAt == nil || done.Owner != "" {
		t.Fatalf("done job %+v cursor %s", done, done.Cursor)
	}
	if got := fmt.Sprint(h.pagesOf(j.ID)); got != "[0 1 2 3 4]" {
		t.Fatalf("pages %s", got)
	}
}

func TestJobFailsThenResumesFromItsCursor(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	h := &pages{n: 3, fail: errors.New("vendor said no")}
	r := testRunner(t, s, "a")
	r.Handle("import", h)
	startRunner(t, r)
	j, _ := s.Create(ctx, Spec{Kind: "import"})
	failed := waitStatus(t, s, j.ID, Failed)
	if failed.Error != "vendor said no" || failed.Processed != 1 {
		t.Fatalf("failed job %+v", failed)
	}
	if _, err := s.Resume(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s, j.ID, Failed)
	h.mu.Lock()
	h.fail = nil
	h.mu.Unlock()
	if _, err := s.Resume(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	done := waitStatus(t, s, j.ID, Done)
	if got := fmt.Sprint(h.pagesOf(j.ID)); got != "[0 1 2]" || done.Processed != 3 || done.Error != "" {
		t.Fatalf("pages %s, job %+v", got, done)
	}
	if _, err := s.Resume(ctx, j.ID); !errors.Is(err, ErrState) {
		t.Fatalf("resume of a done job: %v", err)
	}
}

// A cdcd killed mid-job holds its lease until it lapses; then another
// takes the job from its last saved cursor, repeating nothing saved.
func TestJobTakenFromCursorAfterLeaseLapses(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	j, _ := s.Create(ctx, Spec{Kind: "backfill"})
	claimed, err := s.claim(ctx, "killed", []string{"backfill"}, 500*time.Millisecond)
	if err != nil || claimed == nil || claimed.ID != j.ID {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	dead := &progress{s: s, id: j.ID, owner: "killed", last: time.Now()}
	if err := dead.Save(ctx, 2, 2); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.claim(ctx, "other", []string{"backfill"}, time.Second); again != nil {
		t.Fatalf("a leased job was claimed twice: %+v", again)
	}
	h := &pages{n: 4}
	r := testRunner(t, s, "b")
	r.Handle("backfill", h)
	startRunner(t, r)
	done := waitStatus(t, s, j.ID, Done)
	if got := fmt.Sprint(h.pagesOf(j.ID)); got != "[2 3]" || done.Processed != 4 {
		t.Fatalf("pages after takeover %s, job %+v", got, done)
	}
	if err := dead.Save(ctx, 9, 1); !errors.Is(err, ErrLost) {
		t.Fatalf("the old owner saved after losing its lease: %v", err)
	}
}

func TestTwoRunnersNeverRunAJobTwice(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	h := &pages{n: 3, delay: 5 * time.Millisecond}
	var ids []int64
	for range 8 {
		j, _ := s.Create(ctx, Spec{Kind: "export"})
		ids = append(ids, j.ID)
	}
	for _, owner := range []string{"a", "b"} {
		r := testRunner(t, s, owner)
		r.Handle("export", h)
		startRunner(t, r)
	}
	for _, id := range ids {
		waitStatus(t, s, id, Done)
		if got := fmt.Sprint(h.pagesOf(id)); got != "[0 1 2]" {
			t.Fatalf("job %d ran pages %s", id, got)
		}
	}
}

func TestCancelAndPauseStopTheHandler(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	h := &pages{n: 1000, delay: 10 * time.Millisecond}
	r := testRunner(t, s, "a")
	r.Handle("backfill", h)
	startRunner(t, r)
	j, _ := s.Create(ctx, Spec{Kind: "backfill"})
	waitProcessed(t, s, j.ID, 2)
	if _, err := s.Pause(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	paused := waitStatus(t, s, j.ID, Paused)
	waitIdle(t, r, "backfill")
	ran := len(h.pagesOf(j.ID))
	after, _ := s.Get(ctx, j.ID)
	if after.Processed != paused.Processed || after.Status != Paused {
		t.Fatalf("progress after pause: %d then %d, %s", paused.Processed, after.Processed, after.Status)
	}
	if _, err := s.Resume(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	waitProcessed(t, s, j.ID, after.Processed+2)
	if _, err := s.Cancel(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	cancelled := waitStatus(t, s, j.ID, Cancelled)
	if cancelled.FinishedAt == nil {
		t.Fatal("cancelled job has no finish time")
	}
	// The page in hand when the pause came is not saved: it runs again,
	// alone, on resume.
	seen := h.pagesOf(j.ID)
	if seen[ran] != seen[ran-1] {
		t.Fatalf("page %d in hand at the pause not repeated: %v", seen[ran-1], seen)
	}
	for i := 1; i < len(seen); i++ {
		if i != ran && seen[i] != seen[i-1]+1 {
			t.Fatalf("pages repeated or skipped: %v", seen)
		}
	}
	if _, err := s.Cancel(ctx, j.ID); !errors.Is(err, ErrState) {
		t.Fatalf("second cancel: %v", err)
	}
	if _, err := s.Cancel(ctx, 999999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cancel of a missing job: %v", err)
	}
}

func TestRecordErrorCountsAndKeepsTheRecord(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	r := testRunner(t, s, "a")
	r.Handle("import", HandlerFunc(func(ctx context.Context, job *Job, p Progress) error {
		if err := p.RecordError(ctx, `{"id":7}`, errors.New("400: email is invalid"), 0); err != nil {
			return err
		}
		return p.Save(ctx, "end", 1)
	}))
	startRunner(t, r)
	j, _ := s.Create(ctx, Spec{Kind: "import"})
	done := waitStatus(t, s, j.ID, Done)
	errs, err := s.Errors(ctx, j.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if done.Errors != 1 || len(errs) != 1 || errs[0].Record != `{"id":7}` || errs[0].Error != "400: email is invalid" {
		t.Fatalf("job %+v errors %+v", done, errs)
	}
	list, err := s.List(ctx, Filter{Status: Done, Kind: "import"})
	if err != nil || len(list) != 1 || list[0].ID != j.ID {
		t.Fatalf("list: %v %v", list, err)
	}
}

// waitIdle polls until r runs no job of kind.
func waitIdle(t *testing.T, r *Runner, kind string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var m dto.Metric
		if err := r.running.WithLabelValues(kind).Write(&m); err != nil {
			t.Fatal(err)
		}
		if m.GetGauge().GetValue() == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a %s job still runs", kind)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitProcessed(t *testing.T, s *Store, id, n int64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		j, err := s.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Processed >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d processed %d, want %d", id, j.Processed, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCreateOnceCreatesOneJobPerPipeline(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	spec := Spec{Kind: "backfill", Pipeline: "p", RequestedBy: "config:snapshot"}
	first, created, err := s.CreateOnce(ctx, spec)
	if err != nil || !created {
		t.Fatalf("first: %v %v", created, err)
	}
	if _, err := s.Cancel(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	again, created, err := s.CreateOnce(ctx, spec)
	if err != nil || created || again.ID != first.ID {
		t.Fatalf("second: %+v %v %v", again, created, err)
	}
	other, created, err := s.CreateOnce(ctx, Spec{Kind: "backfill", Pipeline: "q", RequestedBy: "config:snapshot"})
	if err != nil || !created || other.ID == first.ID {
		t.Fatalf("other pipeline: %+v %v %v", other, created, err)
	}
}

// A job queued by another process (no Wake here) or resumed is taken at
// once, announced on cdcd_jobs, not at the next poll (an hour away here);
// a job of a kind the runner does not handle wakes it for nothing.
func TestQueuedJobsAreTakenWhenAnnounced(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	h := &pages{n: 1}
	r := NewRunner(s, RunnerConfig{Owner: "a", Lease: time.Hour, Poll: time.Hour}, zerolog.New(zerolog.NewTestWriter(t)), nil)
	r.Handle("backfill", h)
	startRunner(t, r)
	other := NewStore(pool)
	// The runner listens once it has looked for jobs: wait for the first
	// claim's effect, a job queued now and done.
	first, err := other.Create(ctx, Spec{Kind: "backfill", Pipeline: "first"})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s, first.ID, Done)
	for i := range 3 {
		began := time.Now()
		j, err := other.Create(ctx, Spec{Kind: "backfill", Pipeline: fmt.Sprint("p", i)})
		if err != nil {
			t.Fatal(err)
		}
		waitStatus(t, s, j.ID, Done)
		if d := time.Since(began); d > 10*time.Second {
			t.Fatalf("job %d taken after %s", j.ID, d)
		}
	}
	if _, err := other.Create(ctx, Spec{Kind: "import", Pipeline: "elsewhere"}); err != nil {
		t.Fatal(err)
	}
	paused, err := other.Create(ctx, Spec{Kind: "backfill", Pipeline: "paused"})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s, paused.ID, Done)
	if _, err := pool.Exec(ctx, `UPDATE cdcd.jobs SET status = 'paused' WHERE id = $1`, paused.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE cdcd.jobs SET status = 'queued', cursor = NULL WHERE id = $1`, paused.ID); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s, paused.ID, Done)
	if got := len(h.pagesOf(paused.ID)); got != 2 {
		t.Fatalf("the job queued again ran %d times in all, want 2", got)
	}
}

// A job paused and resumed at once is claimed again by the same runner
// while its first run, not yet told of the pause, still holds a page:
// that run's next Save must fail, so that the job never runs twice at
// once (both saving cursors and counting pages).
func TestPauseResumeWhileAPageIsInHand(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	inHand, release := make(chan struct{}), make(chan struct{})
	secondRun := make(chan struct{})
	firstSave := make(chan error, 1)
	var runs sync.Mutex
	n := 0
	r := NewRunner(s, RunnerConfig{Owner: "a", Lease: time.Hour, Poll: 50 * time.Millisecond}, zerolog.New(zerolog.NewTestWriter(t)), nil)
	r.Handle("import", HandlerFunc(func(ctx context.Context, job *Job, p Progress) error {
		runs.Lock()
		n++
		run := n
		runs.Unlock()
		if run > 1 {
			close(secondRun)
			<-ctx.Done()
			return ctx.Err()
		}
		if err := p.Save(ctx, 1, 1); err != nil {
			return err
		}
		close(inHand)
		<-release
		err := p.Save(ctx, 2, 1)
		firstSave <- err
		return err
	}))
	startRunner(t, r)
	j, _ := s.Create(ctx, Spec{Kind: "import"})
	r.Wake()
	<-inHand
	if _, err := s.Pause(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resume(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	r.Wake()
	select {
	case <-secondRun:
	case <-time.After(15 * time.Second):
		t.Fatal("the resumed job was not claimed again")
	}
	close(release)
	if err := <-firstSave; !errors.Is(err, ErrLost) {
		t.Fatalf("the first run saved after the job was paused and claimed again: %v", err)
	}
	if got, _ := s.Get(ctx, j.ID); got.Processed != 1 || string(got.Cursor) != "1" {
		t.Fatalf("job processed %d, cursor %s; want 1 and 1", got.Processed, got.Cursor)
	}
}

// Two cdcd on one database with other configs (two deployments, or one
// not yet restarted with a new pipeline) both import: a runner leaves an
// import of a pipeline it has no source for to the one that has, instead
// of claiming it and failing it.
func TestJobOfAPipelineIsLeftToTheRunnerThatHasIt(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	erp := &pages{n: 1}
	b := testRunner(t, s, "b")
	b.Handle("import", &scopedFunc{pipelines: []string{"erp-to-items"}, HandlerFunc: func(ctx context.Context, job *Job, p Progress) error {
		if job.Pipeline != "erp-to-items" {
			return fmt.Errorf("import: %q is not an inbound pipeline here", job.Pipeline)
		}
		return erp.Run(ctx, job, p)
	}})
	startRunner(t, b)
	j, _ := s.Create(ctx, Spec{Kind: "import", Pipeline: "crm-to-contacts"})
	mine, _ := s.Create(ctx, Spec{Kind: "import", Pipeline: "erp-to-items"})
	b.Wake()
	// b claims in id order: the other job, older, was passed over.
	waitStatus(t, s, mine.ID, Done)
	if got, _ := s.Get(ctx, j.ID); got.Status != Queued {
		t.Fatalf("the other pipeline's import is %s (%s), want queued", got.Status, got.Error)
	}
	crm := &pages{n: 2}
	a := testRunner(t, s, "a")
	a.Handle("import", &scopedFunc{HandlerFunc: crm.Run, pipelines: []string{"crm-to-contacts"}})
	startRunner(t, a)
	waitStatus(t, s, j.ID, Done)
	if got := fmt.Sprint(crm.pagesOf(j.ID)); got != "[0 1]" {
		t.Fatalf("pages %s", got)
	}
}

// scopedFunc is a handler of the jobs of some pipelines only.
type scopedFunc struct {
	HandlerFunc
	pipelines []string
}

func (h *scopedFunc) Pipelines() []string { return h.pipelines }

// panics is a handler whose Run panics, as a lister meeting an answer it
// does not expect might.
type panics struct{}

func (panics) Run(context.Context, *Job, Progress) error {
	panic("index out of range [3] with length 3")
}

// A handler that panics fails its job with the panic for a reason; the
// runner and cdcd go on, and run the next job.
func TestPanickingHandlerFailsItsJobOnly(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	r := testRunner(t, s, "a")
	r.Handle("import", panics{})
	h := &pages{n: 2}
	r.Handle("backfill", h)
	startRunner(t, r)
	bad, _ := s.Create(ctx, Spec{Kind: "import"})
	failed := waitStatus(t, s, bad.ID, Failed)
	if want := "internal error: index out of range [3] with length 3"; failed.Error != want {
		t.Fatalf("failed job's error %q, want %q", failed.Error, want)
	}
	good, _ := s.Create(ctx, Spec{Kind: "backfill"})
	if done := waitStatus(t, s, good.ID, Done); done.Processed != 2 {
		t.Fatalf("job after the panic %+v", done)
	}
}

// cut is a pages handler, a Retrier, whose runs fail with err before
// their first page, fails times over.
type cut struct {
	pages
	err   error
	fails atomic.Int32
	runs  atomic.Int32
}

func (h *cut) RetriesLostConnections() bool { return true }

func (h *cut) Run(ctx context.Context, job *Job, p Progress) error {
	h.runs.Add(1)
	if h.fails.Add(-1) >= 0 {
		return h.err
	}
	return h.pages.Run(ctx, job, p)
}

// A backfill whose connection Postgres cut (a restart) runs again from
// its cursor by itself; one that failed for another reason fails at once,
// and one cut on every run gives up after retryLimit runs.
func TestJobRunsAgainAfterALostConnection(t *testing.T) {
	lost := fmt.Errorf("read chunk: %w", &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"})
	for _, tc := range []struct {
		name  string
		err   error
		fails int32
		want  Status
		runs  int32
	}{
		{"restart", lost, 2, Done, 3},
		{"refused", fmt.Errorf("connect: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), 1, Done, 2},
		{"not a connection", errors.New(`column "x" does not exist`), 1, Failed, 1},
		{"cut every time", lost, 100, Failed, retryLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t)
			r := NewRunner(s, RunnerConfig{Owner: "a", Lease: 900 * time.Millisecond, Poll: 50 * time.Millisecond, RetryMin: time.Millisecond},
				zerolog.New(zerolog.NewTestWriter(t)), nil)
			h := &cut{pages: pages{n: 3}, err: tc.err}
			h.fails.Store(tc.fails)
			r.Handle("backfill", h)
			startRunner(t, r)
			j, _ := s.Create(context.Background(), Spec{Kind: "backfill"})
			end := waitStatus(t, s, j.ID, tc.want)
			if got := h.runs.Load(); got != tc.runs {
				t.Fatalf("%d runs, want %d (job %+v)", got, tc.runs, end)
			}
			if tc.want == Done && fmt.Sprint(h.pagesOf(j.ID)) != "[0 1 2]" {
				t.Fatalf("pages %v", h.pagesOf(j.ID))
			}
			if tc.want == Failed && end.Error != tc.err.Error() {
				t.Fatalf("error %q, want %q", end.Error, tc.err)
			}
		})
	}
}
