package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/cdc/pgwal"
	"github.com/cdcd-dev/cdcd/jobs"
	"github.com/cdcd-dev/cdcd/store"
)

var pg cdctest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Destroy()
	os.Exit(code)
}

// stateSink keeps what a system would hold: the last row written per key,
// and counts what it was sent.
type stateSink struct {
	delay   atomic.Int64 // nanoseconds each Write takes, as a sync would
	onRead  func()       // called before a Write holding rows read, when set
	forgets atomic.Bool  // keeps copies of the rows (cdc.Forgetful), not the rows
	mu      sync.Mutex
	rows    map[string]cdc.Row
	reads   map[string]int // op r events per key
	ops     map[cdc.Op]int
	rels    map[cdc.Op]*cdc.Relation // the last of each op
}

func newStateSink() *stateSink {
	return &stateSink{rows: map[string]cdc.Row{}, reads: map[string]int{}, ops: map[cdc.Op]int{}, rels: map[cdc.Op]*cdc.Relation{}}
}

func (s *stateSink) Write(_ context.Context, events []cdc.Event) error {
	if d := s.delay.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	if s.onRead != nil && slices.ContainsFunc(events, func(e cdc.Event) bool { return e.Op == cdc.OpRead }) {
		s.onRead()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range events {
		e := &events[i]
		k := string(e.Key[0].Value)
		s.ops[e.Op]++
		if old, ok := e.Before.Get(e.Key[0].Name); ok && string(old) != k {
			delete(s.rows, string(old)) // a change of the key
		}
		s.rels[e.Op] = e.Relation
		switch e.Op {
		case cdc.OpDelete:
			delete(s.rows, k)
		default:
			if e.Op == cdc.OpRead {
				s.reads[k]++
			}
			row := withUnchanged(s.rows[k], e)
			if s.forgets.Load() {
				row = slices.Clone(row)
				for i := range row {
					row[i].Value = slices.Clone(row[i].Value)
				}
			}
			s.rows[k] = row
		}
	}
	return nil
}

func (s *stateSink) Close(context.Context) error { return nil }

func (s *stateSink) ForgetsEvents() bool { return s.forgets.Load() }

// withUnchanged is e's row over prev, as a system applies an update: the
// columns e leaves out (Unchanged) keep their value in prev, in prev's
// order.
func withUnchanged(prev cdc.Row, e *cdc.Event) cdc.Row {
	if len(e.Unchanged) == 0 || prev == nil {
		return e.After
	}
	var row cdc.Row
	for _, f := range prev {
		if v, ok := e.After.Get(f.Name); ok {
			row = append(row, cdc.Field{Name: f.Name, Value: v})
		} else if slices.Contains(e.Unchanged, f.Name) {
			row = append(row, f)
		}
	}
	for _, f := range e.After {
		if _, ok := prev.Get(f.Name); !ok {
			row = append(row, f)
		}
	}
	return row
}

func (s *stateSink) count(op cdc.Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ops[op]
}

// rig is a capture stream with a merger, an in-process bus with pipelines
// "a" and "b" from public.items, and a job runner with the backfill
// handler.
type rig struct {
	url    string
	pool   *pgxpool.Pool
	jobs   *jobs.Store
	runner *jobs.Runner
	a, b   *stateSink
	bus    *cdc.LocalBus
	reader *pgwal.Reader
	h      *Handler
}

func newRig(t *testing.T, rows int) *rig {
	t.Helper()
	return newRigAt(t, pg.DB(t, "backfill"), rows)
}

// newRigAt is newRig on the database at url.
func newRigAt(t *testing.T, url string, rows int) *rig {
	t.Helper()
	return newRigWith(t, url, rows, nil)
}

// newRigWith is newRigAt with the stream publishing through wrap(bus),
// when wrap is set, and the statements setup run before it streams.
func newRigWith(t *testing.T, url string, rows int, wrap func(cdc.Publisher) cdc.Publisher, setup ...string) *rig {
	t.Helper()
	ctx := context.Background()
	log := zerolog.New(zerolog.NewTestWriter(t))
	st, err := store.Open(ctx, url, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	r := &rig{url: url, pool: st.Pool(), jobs: jobs.NewStore(st.Pool()), a: newStateSink(), b: newStateSink()}
	r.exec(t, `CREATE TABLE public.items (id int PRIMARY KEY, name text NOT NULL, qty numeric(12,2), at timestamptz NOT NULL DEFAULT now())`)
	r.exec(t, fmt.Sprintf(`INSERT INTO public.items (id, name, qty) SELECT g, 'item ' || g, g * 1.5 FROM generate_series(1, %d) g`, rows))
	for _, sql := range setup {
		r.exec(t, sql)
	}

	merger := NewMerger()
	bus := cdc.NewLocalBus(cdc.LocalBusConfig{}, []cdc.Route{
		{Name: "a", System: "sa", Sink: r.a},
		{Name: "b", System: "sb", Sink: r.b},
	}, log, nil)
	r.bus = bus
	var pub cdc.Publisher = bus
	if wrap != nil {
		pub = wrap(bus)
	}
	r.reader, err = pgwal.NewReader(pgwal.Config{
		URL: url, Slot: slotName(url), Publication: "cdcd", Tables: []pgwal.Table{{Schema: "public", Name: "items"}},
		StatusInterval: 200 * time.Millisecond, Snapshots: merger,
	}, pub, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.runner = jobs.NewRunner(r.jobs, jobs.RunnerConfig{Owner: "test", Lease: 2 * time.Second, Poll: 50 * time.Millisecond}, log, nil)
	r.h = &Handler{URL: url, Merger: merger, Streaming: r.reader.Streaming, ChunkSize: 100, WatermarkTimeout: 10 * time.Second,
		Rereads: prometheus.NewCounter(prometheus.CounterOpts{Name: "rereads"}), Log: log}
	r.runner.Handle(KindBackfill, r.h)
	r.runner.Handle(KindExport, r.h)

	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = r.reader.Run(rctx) }()
	go func() { defer wg.Done(); _ = r.runner.Run(rctx) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		_ = bus.Close(context.Background())
		_, _ = r.pool.Exec(context.Background(), `SELECT pg_drop_replication_slot($1)`, slotName(url))
	})
	cdctest.Eventually(t, 20*time.Second, "the reader to stream", r.reader.Streaming)
	return r
}

// slotName is a slot of the test's own: slots are the server's, not the
// database's.
func slotName(url string) string {
	db, _, _ := strings.Cut(url[strings.LastIndex(url, "/")+1:], "?")
	return "cdcd_" + db
}

func (r *rig) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := r.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// items connects to the rig's database, closed at the test's end, and
// describes public.items.
func (r *rig) items(t *testing.T) (*pgconn.PgConn, *table) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgwal.Connect(ctx, r.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	tb, err := describe(ctx, conn, pgwal.Table{Schema: "public", Name: "items"})
	if err != nil {
		t.Fatal(err)
	}
	return conn, tb
}

// table reads public.items as the stream encodes it: key → row.
func (r *rig) table(t *testing.T) map[string]cdc.Row {
	t.Helper()
	ctx := context.Background()
	conn, tb := r.items(t)
	cr, err := readChunk(ctx, conn, tb, "", nil, "", 1<<30, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]cdc.Row, len(cr.events))
	for _, e := range cr.events {
		out[string(e.Key[0].Value)] = e.After
	}
	return out
}

// equal reports the first difference between what the sink holds and want.
func (s *stateSink) diff(want map[string]cdc.Row) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.rows) != len(want) {
		return fmt.Sprintf("sink holds %d rows, table %d", len(s.rows), len(want))
	}
	for k, w := range want {
		got, ok := s.rows[k]
		if !ok {
			return "key " + k + " missing at the sink"
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(w)
		if string(gb) != string(wb) {
			return fmt.Sprintf("key %s: sink %s, table %s", k, gb, wb)
		}
	}
	return ""
}

func (r *rig) start(t *testing.T, kind, pipeline string, p Params) *jobs.Job {
	t.Helper()
	j, err := r.jobs.Create(context.Background(), jobs.Spec{Kind: kind, Pipeline: pipeline, Params: p, RequestedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	r.runner.Wake()
	return j
}

func (r *rig) wait(t *testing.T, id int64, want jobs.Status) *jobs.Job {
	t.Helper()
	var j *jobs.Job
	cdctest.Eventually(t, 60*time.Second, "job "+fmt.Sprint(id)+" "+string(want), func() bool {
		var err error
		j, err = r.jobs.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status == jobs.Failed && want != jobs.Failed {
			t.Fatalf("job failed: %s", j.Error)
		}
		return j.Status == want
	})
	return j
}

// The DBLog guarantee: with updates, deletes and inserts racing the
// backfill, what the sink holds last per key equals the table, and the
// rows read reach only the pipeline backfilled.
//
// With sinks that forget their events once delivered, the chunks after one
// reuse its memory (Handler.Reuse), and the outcome is the same.
func TestBackfillWithConcurrentChangesConverges(t *testing.T) {
	for _, reuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("reuse=%v", reuse), func(t *testing.T) { backfillWithConcurrentChanges(t, reuse) })
	}
}

func backfillWithConcurrentChanges(t *testing.T, reuse bool) {
	r := newRig(t, 3000)
	reused := prometheus.NewCounter(prometheus.CounterOpts{Name: "reused"})
	if reuse {
		r.a.forgets.Store(true)
		r.b.forgets.Store(true)
		r.h.Reuse, r.h.Reused = r.bus.Forgets, reused
	}
	// Each delivery of rows read waits for three more changes to commit,
	// so that changes race every chunk however fast the backfill runs.
	var made atomic.Int64
	stop := make(chan struct{})
	r.a.onRead = func() {
		want := made.Load() + 3
		deadline := time.Now().Add(10 * time.Second)
		for made.Load() < want && time.Now().Before(deadline) {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}
	j := r.start(t, KindBackfill, "a", Params{Table: "public.items", Pipelines: []string{"a"}})

	changed := make(chan int, 1)
	go func() {
		n := 0
		defer func() { changed <- n }()
		rng := rand.New(rand.NewPCG(1, 2))
		ctx := context.Background()
		for {
			select {
			case <-stop:
				return
			default:
			}
			id := 1 + rng.IntN(3300)
			var err error
			switch rng.IntN(10) {
			case 0:
				_, err = r.pool.Exec(ctx, `DELETE FROM public.items WHERE id = $1`, id)
			case 1:
				_, err = r.pool.Exec(ctx, `INSERT INTO public.items (id, name) VALUES ($1, 'new') ON CONFLICT (id) DO UPDATE SET name = 'renew'`, id)
			default:
				batch := &pgx.Batch{}
				for k := range 5 {
					batch.Queue(`UPDATE public.items SET name = name || '+', qty = qty + 1 WHERE id = $1`, (id+k*37)%3300+1)
				}
				err = r.pool.SendBatch(ctx, batch).Close()
			}
			if err != nil {
				t.Error(err)
				return
			}
			n++
			made.Add(1)
		}
	}()
	done := r.wait(t, j.ID, jobs.Done)
	close(stop)
	if n := <-changed; n < 50 {
		t.Fatalf("only %d changes raced the backfill", n)
	}
	want := r.table(t)
	cdctest.Eventually(t, 30*time.Second, "the sink to hold the table", func() bool { return r.a.diff(want) == "" })
	if d := r.a.diff(want); d != "" {
		t.Fatal(d)
	}
	if done.Processed < 2500 || done.Total == nil || *done.Total != done.Processed {
		t.Fatalf("job counts: processed %d total %v", done.Processed, *done.Total)
	}
	if n := r.b.count(cdc.OpRead); n != 0 {
		t.Fatalf("pipeline b, not backfilled, got %d rows read", n)
	}
	if n := r.a.count(cdc.OpRead); n < 2000 {
		t.Fatalf("pipeline a got %d rows read", n)
	}
	if n := testutil.ToFloat64(reused); reuse && n < 10 {
		t.Fatalf("the memory of %v chunks of 30 was reused, want most", n)
	}
	// Rows read describe their columns as the stream does (Kafka's schema
	// blocks are made from it).
	r.a.mu.Lock()
	read, streamed := r.a.rels[cdc.OpRead], r.a.rels[cdc.OpUpdate]
	r.a.mu.Unlock()
	if read == nil || streamed == nil || fmt.Sprint(*read) != fmt.Sprint(*streamed) {
		t.Fatalf("relation of rows read %v, of changes %v", read, streamed)
	}
}

// A transaction whose commit record precedes a chunk's low watermark but
// which is not yet visible to new snapshots (here: waiting for a
// synchronous standby that never answers) is not overwritten by the
// chunk's old row: its change, streamed before the window, stays last.
func TestBackfillDoesNotOverwriteACommitNotYetVisible(t *testing.T) {
	r, release := hiddenCommit(t, false)
	ctx := context.Background()
	j := r.start(t, KindBackfill, "a", Params{Table: "public.items", Pipelines: []string{"a"}})
	cdctest.Eventually(t, 30*time.Second, "the backfill to end or to read a chunk again", func() bool {
		got, err := r.jobs.Get(ctx, j.ID)
		return err == nil && (got.Status == jobs.Done || got.Status == jobs.Failed) || testutil.ToFloat64(r.h.Rereads) > 0
	})
	release()
	r.wait(t, j.ID, jobs.Done)
	r.checkConverged(t)
}

// With the keys of the transactions streamed while a backfill runs kept,
// a chunk whose snapshot misses one of them drops its keys instead of
// being read again: the backfill ends while the commit is still hidden,
// without reading a chunk twice, and the streamed change stays last.
func TestBackfillDropsTheKeysOfACommitNotYetVisible(t *testing.T) {
	r, release := hiddenCommit(t, true)
	j := r.start(t, KindBackfill, "a", Params{Table: "public.items", Pipelines: []string{"a"}})
	r.wait(t, j.ID, jobs.Done)
	if n := testutil.ToFloat64(r.h.Rereads); n != 0 || r.h.Merger.Patched() == 0 {
		t.Fatalf("%v chunks read again, %d made up for the missed commit", n, r.h.Merger.Patched())
	}
	r.a.mu.Lock()
	v, _ := r.a.rows["5"].Get("name")
	_, read := r.a.reads["5"]
	r.a.mu.Unlock()
	if string(v) != `"fresh"` || read {
		t.Fatalf("key 5 at the sink: %s, read by the backfill %v; want the streamed change only", v, read)
	}
	release()
	r.checkConverged(t)
}

// A transaction not yet visible to the chunks' snapshots that updates,
// deletes, inserts and moves keys (into and out of a chunk's range, and
// in several chunks) is made up for by the chunks that miss it: they drop
// every key it touched, old and new, and the sink ends with the table.
func TestBackfillDropsEveryKeyOfACommitNotYetVisible(t *testing.T) {
	r, release := hiddenCommitOf(t, true, `BEGIN;
		UPDATE public.items SET name = 'fresh' WHERE id = 5;
		DELETE FROM public.items WHERE id = 7;
		UPDATE public.items SET id = 1009 WHERE id = 9;
		UPDATE public.items SET id = 0, name = 'moved' WHERE id = 250;
		UPDATE public.items SET name = 'fresh2' WHERE id = 150;
		INSERT INTO public.items (id, name) VALUES (2000, 'new');
		COMMIT`)
	j := r.start(t, KindBackfill, "a", Params{Table: "public.items", Pipelines: []string{"a"}})
	r.wait(t, j.ID, jobs.Done)
	if n := testutil.ToFloat64(r.h.Rereads); n != 0 || r.h.Merger.Patched() == 0 {
		t.Fatalf("%v chunks read again, %d made up for the missed commit", n, r.h.Merger.Patched())
	}
	r.a.mu.Lock()
	for _, k := range []string{"5", "7", "9", "150", "250"} {
		if n := r.a.reads[k]; n != 0 {
			t.Errorf("key %s: read by the backfill (%d), which did not see its change", k, n)
		}
	}
	for _, k := range []string{"7", "9", "250"} {
		if row, ok := r.a.rows[k]; ok {
			t.Errorf("key %s, deleted or moved, is at the sink: %v", k, row)
		}
	}
	for k, name := range map[string]string{"0": `"moved"`, "5": `"fresh"`, "150": `"fresh2"`, "2000": `"new"`, "1009": `"item 9"`} {
		if v, _ := r.a.rows[k].Get("name"); string(v) != name {
			t.Errorf("key %s at the sink: name %s, want %s", k, v, name)
		}
	}
	if n := len(r.a.reads); n != 295 {
		t.Errorf("%d keys read, want 295", n)
	}
	r.a.mu.Unlock()
	release()
	want := r.table(t)
	cdctest.Eventually(t, 10*time.Second, "the sink to hold the table", func() bool { return r.a.diff(want) == "" })
}

// hiddenCommit starts a rig of 300 rows and commits an update of key 5
// (name 'fresh') that the stream delivers but new snapshots do not see
// until release is called: it waits for a synchronous standby that never
// answers. With keys, a backfill is running (Merger.Begin) while it
// streams.
func hiddenCommit(t *testing.T, keys bool) (r *rig, release func()) {
	t.Helper()
	return hiddenCommitOf(t, keys, `UPDATE public.items SET name = 'fresh' WHERE id = 5`)
}

// hiddenCommitOf is hiddenCommit committing sql, which must set key 5's
// name to 'fresh' (the sign that the stream delivered it).
func hiddenCommitOf(t *testing.T, keys bool, sql string) (r *rig, release func()) {
	t.Helper()
	srv := cdctest.StartPostgres(t)
	url := srv.CreateDB(t, "backfill")
	// cdcd's sessions commit without waiting for a standby; the one below
	// asks for it.
	srv.Exec(t, "postgres", `ALTER DATABASE backfill SET synchronous_commit = local`)
	r = newRigAt(t, url, 300)
	srv.Exec(t, "postgres", `ALTER SYSTEM SET synchronous_standby_names = 'nobody'`)
	srv.Exec(t, "postgres", `SELECT pg_reload_conf()`)
	if keys {
		t.Cleanup(r.h.Merger.Begin())
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	cdctest.Eventually(t, 10*time.Second, "the standby setting to apply", func() bool {
		var v string
		return conn.QueryRow(ctx, `SHOW synchronous_standby_names`).Scan(&v) == nil && v == "nobody"
	})
	var pid int
	if _, err := conn.Exec(ctx, `SET synchronous_commit = on`); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	committed := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, sql)
		committed <- err
	}()
	// The commit is in the WAL (the stream delivers it) and waits for the
	// standby: invisible to new snapshots.
	cdctest.Eventually(t, 20*time.Second, "the update to stream", func() bool {
		r.a.mu.Lock()
		defer r.a.mu.Unlock()
		v, _ := r.a.rows["5"].Get("name")
		return string(v) == `"fresh"`
	})
	var visible int
	if err := r.pool.QueryRow(ctx, `SELECT count(*) FROM public.items WHERE name = 'fresh'`).Scan(&visible); err != nil || visible != 0 {
		t.Fatalf("the update is visible (%d, %v): the test needs it hidden", visible, err)
	}
	return r, func() {
		t.Helper()
		// The commit stays committed, and becomes visible.
		if _, err := r.pool.Exec(ctx, `SELECT pg_cancel_backend($1)`, pid); err != nil {
			t.Fatal(err)
		}
		if err := <-committed; err != nil {
			t.Fatal(err)
		}
	}
}

// checkConverged checks that sink a holds the table, key 5 'fresh', and
// the backfill's rows.
func (r *rig) checkConverged(t *testing.T) {
	t.Helper()
	want := r.table(t)
	if v, _ := want["5"].Get("name"); string(v) != `"fresh"` {
		t.Fatalf("the table holds %s for key 5", v)
	}
	for deadline := time.Now().Add(10 * time.Second); r.a.diff(want) != ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the sink does not hold the table: %s", r.a.diff(want))
		}
	}
	if n := r.a.count(cdc.OpRead); n < 299 {
		t.Fatalf("pipeline a got %d rows read", n)
	}
}

// A --where backfill reads only the rows it selects, and a cursor saved
// by an earlier run is where a resumed job goes on.
func TestBackfillWhereAndResumeFromCursor(t *testing.T) {
	r := newRig(t, 500)
	ctx := context.Background()
	// A run that stopped after id 200: its cursor is saved. (Queued with
	// it in one statement: a queued job is taken as it is announced.)
	var id int64
	if err := r.pool.QueryRow(ctx, `INSERT INTO cdcd.jobs (kind, pipeline, params, cursor, processed)
		VALUES ($1, 'b', $2, '{"after":["200"]}', 100) RETURNING id`, KindBackfill,
		Params{Table: "public.items", Pipelines: []string{"b"}, Where: "id % 2 = 0"}).Scan(&id); err != nil {
		t.Fatal(err)
	}
	r.runner.Wake()
	done := r.wait(t, id, jobs.Done)
	cdctest.Eventually(t, 10*time.Second, "150 rows at b", func() bool { return r.b.count(cdc.OpRead) == 150 })
	r.b.mu.Lock()
	defer r.b.mu.Unlock()
	for k := range r.b.reads {
		var id int
		_ = json.Unmarshal([]byte(k), &id)
		if id <= 200 || id%2 != 0 {
			t.Fatalf("row %d read, outside the cursor or the where clause", id)
		}
	}
	if done.Processed != 250 || r.a.count(cdc.OpRead) != 0 {
		t.Fatalf("processed %d, a got %d", done.Processed, r.a.count(cdc.OpRead))
	}
}

// Keys go back into the next chunk's query as literals: quotes and
// backslashes in them stay what they were.
func TestQuoteLiteralRoundTrips(t *testing.T) {
	url := pg.DB(t, "quote")
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for _, s := range []string{`plain`, `it's`, `back\slash`, `\'`, `''\\`, "new\nline", `E'x'`} {
		var got string
		if err := pool.QueryRow(context.Background(), "SELECT "+quoteLiteral(s)).Scan(&got); err != nil || got != s {
			t.Fatalf("%q came back as %q (%v)", s, got, err)
		}
	}
}

// A snapshot sees what committed before its xmax but its running xids,
// across the 32-bit wraparound of the stream's transaction ids.
func TestSnapshotSees(t *testing.T) {
	s, err := parseSnapshot("4294967390:4294967400:4294967392,4294967395")
	if err != nil {
		t.Fatal(err)
	}
	for xid, want := range map[uint32]bool{94: true, 96: false, 97: true, 99: false, 103: true, 104: false, 107: false, 4294967290: true} {
		if got := s.sees(xid); got != want {
			t.Errorf("xid %d: sees %v, want %v", xid, got, want)
		}
	}
	if _, err := parseSnapshot("10:12"); err == nil {
		t.Fatal("a snapshot without xip parsed")
	}
}

// The merger remembers the last xidHistory transactions streamed, and a
// transaction streamed again keeps its later sighting when the earlier
// one leaves the history.
func TestMergerHistory(t *testing.T) {
	m := NewMerger()
	m.saw(7)
	m.saw(7) // the same transaction's next change
	m.saw(8)
	m.saw(7) // streamed again, after a reconnect: seq 3
	for xid := uint32(9); len(m.ring) < xidHistory; xid++ {
		m.saw(xid)
	}
	m.saw(1 << 30) // evicts 7's first sighting
	if m.seen[7] != 3 {
		t.Fatalf("7 seen at %d, want its later sighting, 3", m.seen[7])
	}
	m.saw(1<<30 + 1) // evicts 8
	if _, ok := m.seen[8]; ok || len(m.seen) != xidHistory {
		t.Fatalf("8 still remembered (%v), or %d remembered", ok, len(m.seen))
	}
	none := &snapshot{xmax: 1, xip: map[uint32]struct{}{}} // sees nothing streamed
	if stale, _ := m.missed(none, m.seq, "public", "items", map[string][]string{}); !stale {
		t.Fatal("missed: a snapshot seeing nothing must miss what streamed up to seq")
	}
	if stale, _ := m.missed(none, 0, "public", "items", map[string][]string{}); stale {
		t.Fatal("missed: nothing streamed before seq 0")
	}
}

// Rows wider than chunkBytes allows at chunk_size are read in smaller
// chunks, and a chunk cut short that way is not taken for the last one.
func TestBackfillOfWideRowsReadsEveryRow(t *testing.T) {
	r := newRig(t, 60)
	// 60 rows of 1 MiB: chunks of 7 after the first (chunk_size 100).
	r.exec(t, `UPDATE public.items SET name = repeat('x', 1 << 20)`)
	j := r.start(t, KindBackfill, "a", Params{Table: "public.items", Pipelines: []string{"a"}})
	done := r.wait(t, j.ID, jobs.Done)
	cdctest.Eventually(t, 20*time.Second, "60 rows at a", func() bool { return r.a.count(cdc.OpRead) == 60 })
	if done.Processed != 60 {
		t.Fatalf("processed %d, want 60", done.Processed)
	}
}

func TestChunkLimit(t *testing.T) {
	for _, c := range []struct {
		n     int
		bytes int64
		want  int
	}{
		{0, 0, 10000},               // nothing read: chunk_size
		{10000, 10000 * 300, 10000}, // narrow rows: chunk_size
		{100, 100 << 20, 7},         // 1 MiB rows: 7 fit in 8 MiB
		{1, 64 << 20, 1},            // a row wider than the budget: one at a time
		{10000, 10000 * 4096, 2047}, // 4 KiB rows
	} {
		got := chunkLimit(10000, &chunkRead{n: c.n, bytes: c.bytes})
		if got != c.want {
			t.Errorf("n %d bytes %d: limit %d, want %d", c.n, c.bytes, got, c.want)
		}
	}
}

// Each row's values stay its own, whatever their width: rows wider than
// what is left of the read's current block (64 KiB) once overwrote the
// values of the row before them.
func TestReadRowsKeepsEveryValue(t *testing.T) {
	r := newRig(t, 300)
	r.exec(t, `UPDATE public.items SET name = repeat(id::text || '-', 50 + id % 7 * 40)`)
	want := r.table(t)
	if len(want) != 300 {
		t.Fatalf("read %d rows, want 300", len(want))
	}
	for k, row := range want {
		id, _ := row.Get("id")
		name, _ := row.Get("name")
		var n int
		var s string
		if err := json.Unmarshal(id, &n); err != nil || string(id) != k {
			t.Fatalf("key %s: id %s", k, id)
		}
		if err := json.Unmarshal(name, &s); err != nil || s != strings.Repeat(k+"-", 50+n%7*40) {
			t.Fatalf("key %s: name %.80s", k, name)
		}
	}
}

// A chunk holds about chunkBytes of values (one row more at most),
// whatever chunk_size allows: the first chunk of a table of wide rows
// too, before any chunk told how wide they are.
func TestAChunkHoldsAboutChunkBytes(t *testing.T) {
	r := newRig(t, 40)
	r.exec(t, `UPDATE public.items SET name = repeat('x', 1 << 20)`)
	ctx := context.Background()
	conn, tb := r.items(t)
	c, err := r.h.read(ctx, conn, tb, "0.test.1", nil, Params{Table: "public.items", Pipelines: []string{"a"}}, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.h.Merger.closeChunk(c.c)
	if c.bytes > chunkBytes+2<<20 || c.n == 0 {
		t.Fatalf("a chunk of %d rows holds %d MiB of values, want about %d", c.n, c.bytes>>20, chunkBytes>>20)
	}
	if !c.more || c.n >= 40 {
		t.Fatalf("a chunk cut at %d of 40 rows is taken for the last (more %v)", c.n, c.more)
	}
}

// failReads fails the stream's first Publish that holds rows read, as a
// bus gone away would: the stream drops its batch and resumes from the
// slot's confirmed position.
type failReads struct {
	cdc.Publisher
	failed atomic.Bool
}

func (f *failReads) Publish(ctx context.Context, events []cdc.Event) error {
	for i := range events {
		if events[i].Op == cdc.OpRead && f.failed.CompareAndSwap(false, true) {
			return errors.New("bus gone")
		}
	}
	return f.Publisher.Publish(ctx, events)
}

// A chunk whose rows the stream emitted at its high watermark but lost
// before handing them to the bus (the stream failed and resumed from the
// slot's confirmed position, before that watermark) is read again: the
// backfill ends and every row reaches the sink.
func TestBackfillRereadsAChunkTheStreamLost(t *testing.T) {
	fail := &failReads{}
	r := newRigWith(t, pg.DB(t, "backfill"), 300, func(p cdc.Publisher) cdc.Publisher { fail.Publisher = p; return fail })
	j := r.start(t, KindBackfill, "a", Params{Table: "public.items", Pipelines: []string{"a"}})
	r.wait(t, j.ID, jobs.Done)
	if !fail.failed.Load() {
		t.Fatal("no publish of rows read failed: the test did not lose a chunk")
	}
	want := r.table(t)
	cdctest.Eventually(t, 10*time.Second, "the sink to hold the table", func() bool { return r.a.diff(want) == "" })
}

// Rows whose TOASTed column the stream leaves out of its updates (stored
// out of line, unchanged) reach the sink whole though updates race the
// backfill: a row an update changed between a chunk's watermarks brings
// the column from the read.
func TestBackfillKeepsTOASTedColumnsOfRowsUpdatedInAChunksWindow(t *testing.T) {
	// The rows are whole in the table before the stream starts: the sink
	// gets them from the backfill only.
	r := newRigWith(t, pg.DB(t, "backfill"), 2000, nil,
		`ALTER TABLE public.items ADD COLUMN big text`,
		`ALTER TABLE public.items ALTER COLUMN big SET STORAGE EXTERNAL`,
		`UPDATE public.items SET big = repeat(md5(id::text), 100)`)
	j := r.start(t, KindBackfill, "a", Params{Table: "public.items", Pipelines: []string{"a"}})
	stop := make(chan struct{})
	changed := make(chan int, 1)
	go func() {
		n := 0
		defer func() { changed <- n }()
		ctx := context.Background()
		for id := 1; ; id = id%2000 + 1 {
			select {
			case <-stop:
				return
			default:
			}
			batch := &pgx.Batch{}
			for k := range 20 {
				batch.Queue(`UPDATE public.items SET name = name || '+' WHERE id = $1`, (id+k*97)%2000+1)
			}
			if err := r.pool.SendBatch(ctx, batch).Close(); err != nil {
				t.Error(err)
				return
			}
			n++
		}
	}()
	r.wait(t, j.ID, jobs.Done)
	close(stop)
	if n := <-changed; n < 20 {
		t.Fatalf("only %d batches of updates raced the backfill", n)
	}
	want := r.table(t)
	for deadline := time.Now().Add(30 * time.Second); r.a.diff(want) != ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the sink does not hold the table: %.300s", r.a.diff(want))
		}
	}
}

// cursorCheck checks, as the stream hands rows read to the bus, that
// none is more than one chunk past the job's saved cursor: a crash then
// repeats one chunk at most.
type cursorCheck struct {
	cdc.Publisher
	pool      *pgxpool.Pool
	chunk     int
	published atomic.Int64
	mu        sync.Mutex
	errs      []string
}

func (c *cursorCheck) Publish(ctx context.Context, events []cdc.Event) error {
	top := 0
	for i := range events {
		if events[i].Op == cdc.OpRead {
			id, _ := strconv.Atoi(string(events[i].Key[0].Value))
			top = max(top, id)
		}
	}
	if top > 0 && c.pool != nil {
		var cursor []byte
		if err := c.pool.QueryRow(ctx, `SELECT cursor FROM cdcd.jobs ORDER BY id DESC LIMIT 1`).Scan(&cursor); err != nil {
			return err
		}
		saved := 0
		if cursor != nil {
			var cur Cursor
			if err := json.Unmarshal(cursor, &cur); err != nil {
				return err
			}
			saved, _ = strconv.Atoi(cur.After[0])
		}
		if top > saved+c.chunk {
			c.mu.Lock()
			c.errs = append(c.errs, fmt.Sprintf("row %d published with the cursor at %d", top, saved))
			c.mu.Unlock()
		}
		c.published.Add(1)
	}
	return c.Publisher.Publish(ctx, events)
}

// A chunk's high watermark is written while the chunk before is being
// delivered, but its rows reach the bus only once that chunk is durable
// and its cursor saved: the stream holds them at the watermark. A killed
// job so repeats one chunk at most (e2e's TestKilledBackfillFinishes kills
// it), and the sink still ends with the table.
func TestBackfillHoldsAChunksRowsUntilTheCursorBeforeIsSaved(t *testing.T) {
	check := &cursorCheck{chunk: 100}
	r := newRigWith(t, pg.DB(t, "backfill"), 2000, func(p cdc.Publisher) cdc.Publisher { check.Publisher = p; return check })
	check.pool = r.pool
	r.a.delay.Store(int64(20 * time.Millisecond))
	j := r.start(t, KindBackfill, "a", Params{Table: "public.items", Pipelines: []string{"a"}})
	r.wait(t, j.ID, jobs.Done)
	want := r.table(t)
	cdctest.Eventually(t, 30*time.Second, "the sink to hold the table", func() bool { return r.a.diff(want) == "" })
	check.mu.Lock()
	defer check.mu.Unlock()
	if len(check.errs) > 0 {
		t.Fatalf("rows read reached the bus more than a chunk past the saved cursor: %v", check.errs)
	}
	if check.published.Load() < 20 {
		t.Fatalf("%d batches of rows read published, want the 20 chunks", check.published.Load())
	}
	if r.h.Merger.held.Load() == 0 {
		t.Fatal("the stream never reached a chunk's high watermark before the chunk before was durable: the test did not overlap them")
	}
}

// With a sink slower than aheadBudget a chunk, the next high watermark is
// written only once the chunk before is saved: the stream, and every
// change behind it, is held at most for the first slow delivery, not for
// each.
func TestBackfillToASlowSinkDoesNotHoldTheStream(t *testing.T) {
	check := &cursorCheck{chunk: 100}
	r := newRigWith(t, pg.DB(t, "backfill"), 1000, func(p cdc.Publisher) cdc.Publisher { check.Publisher = p; return check })
	check.pool = r.pool
	r.a.delay.Store(int64(aheadBudget + 50*time.Millisecond))
	j := r.start(t, KindBackfill, "a", Params{Table: "public.items", Pipelines: []string{"a"}})
	r.wait(t, j.ID, jobs.Done)
	want := r.table(t)
	cdctest.Eventually(t, 30*time.Second, "the sink to hold the table", func() bool { return r.a.diff(want) == "" })
	check.mu.Lock()
	defer check.mu.Unlock()
	if len(check.errs) > 0 {
		t.Fatalf("rows read reached the bus more than a chunk past the saved cursor: %v", check.errs)
	}
	if held := r.h.Merger.held.Load(); held > 2 {
		t.Fatalf("the stream waited at %d of 10 high watermarks for a slow delivery before, want 2 at most", held)
	}
}
