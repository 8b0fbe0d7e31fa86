// Command outbound measures delivery through a one-record-per-call system
// (the generic http writer) against its ceiling: a plain Go client making
// the same calls with the same concurrency against the same local target,
// which answers at once. Both run in one invocation, one after the other,
// as many times as asked, and the ratio of each pair is printed.
//
// cdcd runs as a user would run it: the cdcd binary, the embedded bus, one
// pipeline from a table to an http system whose create answers with an id
// (so every record is linked), pipeline concurrency 16, the rate limit out
// of the way. The rows are inserted in one transaction before cdcd starts;
// its clock runs from the target's first request to its last, so that
// startup (migrations, the replication connection) is not counted.
//
//	go run ./deploy/bench/outbound [-rows 20000] [-concurrency 16] [-runs 3]
//	go run ./deploy/bench/outbound -steady 1000 [-kafka]   # latency at a steady rate
//	go run ./deploy/bench/outbound -stall 60s -rows 1000000 # memory behind a stalled target
//
// -kafka runs cdcd with the Kafka bus (kfake, one broker, in the bench
// process) instead of the embedded one; -linger sets its producer's
// kafka.batch.linger.
//
// It is not a test; docs/benchmarks.md records its results.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/deploy/bench/proc"
)

func main() {
	rows := flag.Int("rows", 20_000, "rows inserted, requests made")
	conc := flag.Int("concurrency", 16, "pipeline concurrency and plain client goroutines")
	runs := flag.Int("runs", 1, "side-by-side pairs to run")
	fsync := flag.Bool("fsync", true, "run Postgres with fsync and synchronous_commit on (a delivered record's bookkeeping is on disk)")
	cdcdBin := flag.String("cdcd", "", "run this cdcd binary instead of building ./cmd/cdcd")
	profile := flag.String("cpuprofile", "", "write cdcd's CPU profile of each run to `dir`/outbound-<run>.pprof")
	keep := flag.Bool("keep", false, "keep the temporary directory (configs, cdcd logs)")
	logLevel := flag.String("log", "warn", "cdcd's log level")
	steady := flag.Int("steady", 0, "instead of a backlog, insert `n` rows a second (in transactions of n/100 rows every 10 ms) while cdcd runs, for -rows rows, and report the latency from commit to the target's request")
	pgconf := flag.String("pgconf", "", "more postgresql.conf `lines`, separated by ';'")
	kafka := flag.Bool("kafka", false, "run cdcd on the Kafka bus (kfake in the bench process) instead of the embedded bus")
	linger := flag.Duration("linger", 0, "with -kafka, cdcd's kafka.batch.linger (0: cdcd's default)")
	statements := flag.Bool("statements", false, "print Postgres's CPU by process and the statements that took the most executor time (pg_stat_statements) after each cdcd run")
	stall := flag.Duration("stall", 0, "instead of waiting for every request, hold every request for this long and report cdcd's RSS each second meanwhile (memory behind a stalled target with -rows changes behind it)")
	flag.Parse()
	o := options{steady: *steady, logLevel: *logLevel, pgconf: *pgconf, rows: *rows, conc: *conc, runs: *runs, fsync: *fsync, cdcdBin: *cdcdBin, profile: *profile, keep: *keep, kafka: *kafka, linger: *linger, stall: *stall, statements: *statements}
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "outbound:", err)
		os.Exit(1)
	}
}

type options struct {
	rows, conc, runs int
	steady           int
	stall            time.Duration
	statements       bool
	fsync, keep      bool
	kafka            bool
	linger           time.Duration // kafka.batch.linger, when set
	brokers          string        // set when kafka is
	cdcdBin, profile string
	logLevel, pgconf string
}

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "cdcd-outbound-")
	if err != nil {
		return err
	}
	if o.keep {
		defer fmt.Fprintln(os.Stderr, "kept", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if o.profile != "" {
		if o.profile, err = filepath.Abs(o.profile); err != nil {
			return err
		}
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return err
		}
	}
	bin := o.cdcdBin
	if bin == "" {
		bin = filepath.Join(dir, "cdcd")
		proc.Step("building cdcd")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/cdcd-dev/cdcd/cmd/cdcd").CombinedOutput(); err != nil {
			return fmt.Errorf("go build cdcd: %v: %s", err, out)
		}
	}
	var settings []string
	if o.fsync {
		settings = []string{"fsync = on", "synchronous_commit = on", "full_page_writes = on"}
	}
	if o.statements {
		settings = append(settings, "shared_preload_libraries = 'pg_stat_statements'")
	}
	if o.pgconf != "" {
		settings = append(settings, strings.Split(o.pgconf, ";")...)
	}
	proc.Step("starting Postgres (fsync %v)", o.fsync)
	pg, err := cdctest.NewPostgres(settings...)
	if err != nil {
		return err
	}
	if o.keep {
		defer func() { _ = pg.Stop("fast"); fmt.Fprintln(os.Stderr, "kept", pg.Dir()) }()
	} else {
		defer pg.Destroy()
	}
	conn, err := pgx.Connect(ctx, pg.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tgt := startTarget()
	defer tgt.close()
	if o.kafka {
		proc.Step("starting kfake")
		broker, stop, err := proc.Kafka()
		if err != nil {
			return err
		}
		defer stop()
		o.brokers = broker
	}

	loadStart := proc.LoadAvg()
	var lines []line
	for i := 1; i <= o.runs; i++ {
		var l line
		if o.steady == 0 && o.stall == 0 {
			proc.Step("run %d: plain client, %d requests, %d goroutines", i, o.rows, o.conc)
			if l.plain, err = plainClient(ctx, tgt, o.rows, o.conc); err != nil {
				return err
			}
		}
		proc.Step("run %d: cdcd, %d rows", i, o.rows)
		db := fmt.Sprintf("outbound_%d", i)
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
			return err
		}
		if l.cdcd, err = cdcdRun(ctx, pg.URL(db), bin, dir, tgt, o, i); err != nil {
			return err
		}
		if o.steady > 0 {
			ls := l.cdcd.latencies
			fmt.Printf("run %d (%s): %d rows at %d/s: latency from insert to the target's request p50 %v, p99 %v, max %v; peak RSS %.0f MiB; load avg %s\n",
				i, o.bus(), o.rows, o.steady, quantile(ls, 0.5), quantile(ls, 0.99), quantile(ls, 1), float64(l.cdcd.peakRSS)/(1<<20), proc.LoadAvg())
			continue
		}
		if o.stall > 0 {
			fmt.Printf("run %d (%s): %d rows behind a target holding every request for %v: RSS each second (MiB): %s; peak RSS %.0f MiB; load avg %s\n",
				i, o.bus(), o.rows, o.stall, mib(l.cdcd.rss), float64(l.cdcd.peakRSS)/(1<<20), proc.LoadAvg())
			continue
		}
		proc.Step("run %d: plain client again", i)
		if l.plainAfter, err = plainClient(ctx, tgt, o.rows, o.conc); err != nil {
			return err
		}
		l.load = proc.LoadAvg()
		lines = append(lines, l)
	}
	if o.steady == 0 && o.stall == 0 {
		report(o, pg, conn, loadStart, lines)
	}
	return nil
}

func (o options) bus() string {
	if o.kafka {
		return "Kafka bus (kfake)"
	}
	return "embedded bus"
}

func mib(samples []int64) string {
	var b strings.Builder
	for i, s := range samples {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.0f", float64(s)/(1<<20))
	}
	return b.String()
}

// quantile returns the q quantile of sorted durations, rounded to 0.1 ms.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := min(int(q*float64(len(sorted))), len(sorted)-1)
	return sorted[i].Round(100 * time.Microsecond)
}

// line is one side-by-side run: the plain client just before cdcd and
// just after it, so that a change of the machine's load during the run
// shows, and the ratio is taken against their mean rate.
type line struct {
	plain, cdcd, plainAfter measure
	load                    string
}

func (l line) ceiling() float64 { return (l.plain.rate() + l.plainAfter.rate()) / 2 }

type measure struct {
	requests int64
	elapsed  time.Duration // first request to last
	total    time.Duration // cdcd: process start to last request
	peakRSS  int64
	cpu      time.Duration
	pgCPU    time.Duration // Postgres's, cdcd's start to the last row's bookkeeping
	commits  int64         // transactions committed in cdcd's database during the run
	// latencies are, sorted, each request's delay after its row's insert
	// (meaningful with -steady only).
	latencies []time.Duration
	rss       []int64 // each second's (-stall only)
}

func (m measure) rate() float64 { return float64(m.requests) / m.elapsed.Seconds() }

// target is the local system: POST /items answers 201 with a new id, PUT
// and DELETE answer 204, all at once. It notes when requests arrive.
type target struct {
	url         string
	srv         *http.Server
	next        atomic.Int64
	requests    atomic.Int64
	mu          sync.Mutex
	first, last time.Time
	latencies   []time.Duration // from the body's updated_at to arrival
	hold        chan struct{}   // while set, requests wait until it is closed
}

// stall makes requests wait until the returned func is called.
func (t *target) stall() (release func()) {
	h := make(chan struct{})
	t.mu.Lock()
	t.hold = h
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		t.hold = nil
		t.mu.Unlock()
		close(h)
	}
}

func startTarget() *target {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	t := &target{url: "http://" + l.Addr().String()}
	t.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		t.mu.Lock()
		hold := t.hold
		t.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
		}
		now := time.Now()
		var row struct {
			UpdatedAt time.Time `json:"updated_at"`
		}
		_ = json.Unmarshal(b, &row)
		t.mu.Lock()
		t.latencies = append(t.latencies, now.Sub(row.UpdatedAt))
		if t.first.IsZero() {
			t.first = now
		}
		t.last = now
		t.mu.Unlock()
		t.requests.Add(1)
		if r.Method == http.MethodPost {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"id":"%d"}`, t.next.Add(1))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = t.srv.Serve(l) }()
	return t
}

// reset forgets the requests counted so far.
func (t *target) reset() {
	t.mu.Lock()
	t.first, t.last = time.Time{}, time.Time{}
	t.latencies = t.latencies[:0]
	t.mu.Unlock()
	t.requests.Store(0)
}

func (t *target) window() (first, last time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.first, t.last
}

func (t *target) close() { _ = t.srv.Close() }

// body is what cdcd sends for row i: the row's columns as a JSON object.
func body(i int) []byte {
	return fmt.Appendf(nil, `{"id":%d,"name":"item %d","sku":"SKU-%06d","qty":%d,"price":"%d.50","active":true,"updated_at":"2026-12-01T12:00:00.000000Z","note":"a note about item %d"}`,
		i, i, i, i%100, i%1000, i)
}

// plainClient POSTs n bodies to the target from conc goroutines with one
// http.Client, reading each answer's id as cdcd does.
func plainClient(ctx context.Context, t *target, n, conc int) (measure, error) {
	t.reset()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url+"/items", strings.NewReader(string(body(int(i)))))
				if err == nil {
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Accept", "application/json")
					var resp *http.Response
					if resp, err = client.Do(req); err == nil {
						_, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
						resp.Body.Close()
					}
				}
				if err != nil {
					failed.Store(&err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		return measure{}, *err
	}
	first, last := t.window()
	return measure{requests: t.requests.Load(), elapsed: last.Sub(first)}, nil
}

const tableDDL = `CREATE TABLE items (id bigint PRIMARY KEY, name text, sku text, qty integer, price numeric,
	active boolean, updated_at timestamptz, note text)`

const config = `postgres:
  url: %q
  slot: %s
  publication: %s
  tables: [public.items]
  heartbeat: 0s
http:
  listen: %s
log:
  level: %s
systems:
  erp:
    type: http
    create: {method: POST, url: "%s/items"}
    update: {method: PUT, url: "%s/items/{{.ExternalID}}"}
    id_path: id
    rate: {requests: 1000000, per: 1s}
pipelines:
  - {name: items-to-erp, from: public.items, to: erp, object: items, concurrency: %d}
`

// cdcdRun inserts the rows in one transaction into the table of a fresh
// database whose slot exists, starts cdcd and waits for the target to have
// seen every row, then checks cdcd's bookkeeping: one link and one
// delivered audit event per row.
func cdcdRun(ctx context.Context, url, bin, dir string, t *target, o options, run int) (measure, error) {
	slot, pub := fmt.Sprintf("outbound_%d", run), fmt.Sprintf("outbound_%d", run)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return measure{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, q := range []string{
		tableDDL,
		"CREATE PUBLICATION " + pub + " FOR TABLE items",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return measure{}, fmt.Errorf("%s: %w", q, err)
		}
	}
	if _, err := conn.Exec(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", slot); err != nil {
		return measure{}, err
	}
	defer dropSlot(context.WithoutCancel(ctx), conn, slot)
	if o.steady > 0 {
		// inserted once cdcd streams, below
	} else if _, err := conn.Exec(ctx, `INSERT INTO items
		SELECT i, 'item ' || i, 'SKU-' || lpad(i::text, 6, '0'), i % 100, (i % 1000) + 0.5, true,
		       '2026-12-01 12:00:00+00', 'a note about item ' || i
		FROM generate_series(1, $1) i`, o.rows); err != nil {
		return measure{}, err
	}
	listen, err := proc.FreeAddr()
	if err != nil {
		return measure{}, err
	}
	cfgPath := filepath.Join(dir, fmt.Sprintf("outbound-%d.yaml", run))
	cfg := fmt.Sprintf(config, url, slot, pub, listen, o.logLevel, t.url, t.url, o.conc)
	if o.kafka {
		cfg += proc.KafkaConfig(o.brokers, slot)
		if o.linger > 0 {
			cfg += fmt.Sprintf("  batch: {linger: %s}\n", o.linger)
		}
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return measure{}, err
	}
	logPath := filepath.Join(dir, fmt.Sprintf("outbound-%d.log", run))
	logFile, err := os.Create(logPath)
	if err != nil {
		return measure{}, err
	}
	defer logFile.Close()
	commits0, err := commits(ctx, conn)
	if err != nil {
		return measure{}, err
	}
	postmaster, pgCPU0 := postgresCPU(ctx, conn)
	var children pgProcesses
	if o.statements {
		if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()"); err != nil {
			return measure{}, err
		}
		children = pgChildren(postmaster)
	}
	t.reset()
	if o.stall > 0 {
		release := t.stall()
		defer release()
	}
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = os.Environ()
	if o.profile != "" {
		cmd.Env = append(cmd.Env, "CDCD_CPUPROFILE="+filepath.Join(o.profile, fmt.Sprintf("outbound-%d.pprof", run)))
	}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return measure{}, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return errors.New("cdcd did not stop within 30s of SIGTERM")
		}
	}
	if o.steady > 0 {
		if err := insertSteadily(ctx, conn, t, slot, o.steady, o.rows, exited); err != nil {
			_ = stop()
			return measure{}, err
		}
	}
	if o.stall > 0 {
		var m measure
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for end := time.Now().Add(o.stall); time.Now().Before(end); {
			select {
			case err := <-exited:
				return measure{}, fmt.Errorf("cdcd exited: %v\n%s", err, proc.Tail(logPath))
			case <-tick.C:
			}
			if rss, err := proc.RSS(cmd.Process.Pid); err == nil {
				m.rss = append(m.rss, rss)
			}
		}
		m.peakRSS, _ = proc.PeakRSS(cmd.Process.Pid)
		_ = cmd.Process.Kill() // what it holds is not the point; a stop would deliver it first
		<-exited
		return m, nil
	}
	deadline := time.Now().Add(10 * time.Minute)
	for t.requests.Load() < int64(o.rows) {
		select {
		case err := <-exited:
			return measure{}, fmt.Errorf("cdcd exited: %v\n%s", err, proc.Tail(logPath))
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = stop()
			return measure{}, fmt.Errorf("target saw %d of %d requests after 10 minutes\n%s", t.requests.Load(), o.rows, proc.Tail(logPath))
		}
	}
	first, last := t.window()
	m := measure{requests: t.requests.Load(), elapsed: last.Sub(first), total: last.Sub(began)}
	t.mu.Lock()
	m.latencies = slices.Clone(t.latencies)
	t.mu.Unlock()
	slices.Sort(m.latencies)
	// The last request's bookkeeping follows its answer: wait for it.
	var links, delivered int64
	want := int64(o.rows)
	if o.steady > 0 {
		want++ // the warm-up row
	}
	for time.Now().Before(deadline) {
		err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM cdcd.links),
			(SELECT count(*) FROM cdcd.sync_events WHERE status = 'delivered')`).Scan(&links, &delivered)
		if err == nil && links >= want && delivered >= want {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n, err := commits(ctx, conn); err == nil {
		m.commits = n - commits0
	}
	m.peakRSS, _ = proc.PeakRSS(cmd.Process.Pid)
	m.cpu, _ = proc.CPUTime(cmd.Process.Pid)
	if pgCPU, err := proc.TreeCPUTime(postmaster); err == nil && postmaster != 0 {
		m.pgCPU = pgCPU - pgCPU0
	}
	if o.statements {
		if err := printPostgresWork(ctx, conn, postmaster, children, o.rows); err != nil {
			return m, err
		}
	}
	if err := stop(); err != nil {
		return m, fmt.Errorf("stop cdcd: %w\n%s", err, proc.Tail(logPath))
	}
	if links != want || delivered != want {
		return m, fmt.Errorf("cdcd kept %d links and %d delivered audit events for %d rows", links, delivered, want)
	}
	return m, nil
}

// postgresCPU returns the PID of the postmaster serving conn and the CPU
// time of the server so far (0, 0 when /proc does not tell).
func postgresCPU(ctx context.Context, conn *pgx.Conn) (int, time.Duration) {
	var backend int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return 0, 0
	}
	postmaster, err := proc.ParentPID(backend)
	if err != nil {
		return 0, 0
	}
	cpu, err := proc.TreeCPUTime(postmaster)
	if err != nil {
		return 0, 0
	}
	return postmaster, cpu
}

func report(o options, pg *cdctest.Postgres, conn *pgx.Conn, loadStart string, lines []line) {
	var version string
	_ = conn.QueryRow(context.Background(), "SHOW server_version").Scan(&version)
	fmt.Printf("command:  go run ./deploy/bench/outbound %s\n", strings.Join(os.Args[1:], " "))
	fmt.Printf("machine:  %d CPUs, %s/%s; PostgreSQL %s (fsync %v), %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, version, o.fsync, runtime.Version())
	fmt.Printf("workload: %d rows inserted in one transaction; pipeline concurrency %d; plain client: %d goroutines\n", o.rows, o.conc, o.conc)
	fmt.Printf("load avg: %s at start\n\n", loadStart)
	fmt.Printf("%4s  %14s  %14s  %14s  %6s  %14s  %9s  %11s  %9s  %16s  %s\n", "run", "plain before", "cdcd", "plain after", "ratio", "cdcd from start", "peak RSS", "cdcd CPU s", "pg CPU s", "commits/1k rows", "load avg after")
	var ratios []float64
	for i, l := range lines {
		r := l.cdcd.rate() / l.ceiling()
		ratios = append(ratios, r)
		fmt.Printf("%4d  %12.0f/s  %12.0f/s  %12.0f/s  %6.2f  %13.2fs  %5.0f MiB  %11.2f  %9.2f  %16.0f  %s\n", i+1, l.plain.rate(), l.cdcd.rate(), l.plainAfter.rate(), r,
			l.cdcd.total.Seconds(), float64(l.cdcd.peakRSS)/(1<<20), l.cdcd.cpu.Seconds(), l.cdcd.pgCPU.Seconds(), float64(l.cdcd.commits)*1000/float64(o.rows), l.load)
	}
	slices.Sort(ratios)
	fmt.Printf("\nratio = cdcd requests/s ÷ the mean of the plain client's requests/s before and after it, each from the target's first request to its last; ratios %.2f–%.2f (target ≥ 0.80);\n"+
		"pg CPU s: the Postgres server's CPU time (backends, walsender, background processes) from cdcd's start to the last row's bookkeeping;\n"+
		"commits/1k rows: transactions committed in cdcd's database from its start to the last row's bookkeeping, per 1,000 rows (migrations included)\n",
		ratios[0], ratios[len(ratios)-1])
}

// insertSteadily waits until cdcd streams from slot and delivers a first
// row (id 0: on Kafka, the consumer group has joined), then forgets it and
// inserts rows rows at perSecond, in one transaction of perSecond/100 rows
// every 10 ms, each row's updated_at its insert time.
func insertSteadily(ctx context.Context, conn *pgx.Conn, t *target, slot string, perSecond, rows int, exited <-chan error) error {
	for active := false; !active; {
		if err := conn.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&active); err != nil {
			return err
		}
		select {
		case err := <-exited:
			return fmt.Errorf("cdcd exited: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if _, err := conn.Exec(ctx, `INSERT INTO items VALUES (0, 'warm-up', 'SKU-0', 0, 0, true, clock_timestamp(), '')`); err != nil {
		return err
	}
	for deadline := time.Now().Add(2 * time.Minute); t.requests.Load() == 0; {
		if time.Now().After(deadline) {
			return errors.New("the warm-up row did not reach the target in 2 minutes")
		}
		select {
		case err := <-exited:
			return fmt.Errorf("cdcd exited: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.reset()
	per := max(perSecond/100, 1)
	began := time.Now()
	defer func() { proc.Step("inserted %d rows at %.0f/s", rows, float64(rows)/time.Since(began).Seconds()) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for next := 1; next <= rows; next += per {
		if _, err := conn.Exec(ctx, `INSERT INTO items
			SELECT i, 'item ' || i, 'SKU-' || lpad(i::text, 6, '0'), i % 100, (i % 1000) + 0.5, true,
			       clock_timestamp(), 'a note about item ' || i
			FROM generate_series($1::int, $2::int) i`, next, min(next+per-1, rows)); err != nil {
			return err
		}
		<-tick.C
	}
	return nil
}

// commits is the number of transactions committed in conn's database so
// far (cdcd's, mostly, once it runs).
func commits(ctx context.Context, conn *pgx.Conn) (int64, error) {
	if _, err := conn.Exec(ctx, "SELECT pg_stat_clear_snapshot()"); err != nil {
		return 0, err
	}
	var n int64
	err := conn.QueryRow(ctx, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").Scan(&n)
	return n, err
}

func dropSlot(ctx context.Context, conn *pgx.Conn, slot string) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", slot)
		if err == nil || time.Now().After(deadline) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
