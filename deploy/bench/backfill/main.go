// Command backfill measures a backfill against its ceiling, Postgres's own
// COPY (SELECT ...) TO STDOUT of the same table read to /dev/null, side by
// side in one run. The cdcd binary streams from its slot, a backfill of a
// table of -rows rows (text, numeric and timestamp columns) is queued with
// cdcd backfill, and its time runs from the job's start (a running cdcd
// takes a job another process queued as it is announced) to its end (every chunk
// durable in the file writer's file, fsync on). While it
// runs, -updates single-row updates of the same table commit; at the end
// the last event of every key in the file must equal the table's row.
//
//	go run ./deploy/bench/backfill [-rows 1000000] [-updates 10000] [-chunk 10000] [-pad 0]
//
// It is not a test; docs/benchmarks.md records its results.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/deploy/bench/proc"
)

func main() {
	rows := flag.Int("rows", 1_000_000, "rows in the table")
	updates := flag.Int("updates", 10_000, "updates committed while the backfill runs")
	chunk := flag.Int("chunk", 10000, "jobs.chunk_size")
	bin := flag.String("cdcd", "", "run this cdcd binary instead of building ./cmd/cdcd")
	pad := flag.Int("pad", 0, "bytes of text added to every row (a wider table)")
	keep := flag.Bool("keep", false, "keep the temporary directory")
	level := flag.String("log", "warn", "cdcd's log.level (its log is kept with -keep)")
	flag.Parse()
	if err := run(*rows, *updates, *chunk, *pad, *bin, *level, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "backfill:", err)
		os.Exit(1)
	}
}

func run(rows, updates, chunk, pad int, bin, level string, keep bool) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "cdcd-bench-backfill-")
	if err != nil {
		return err
	}
	if keep {
		defer fmt.Fprintln(os.Stderr, "kept", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if bin == "" {
		bin = filepath.Join(dir, "cdcd")
		proc.Step("building cdcd")
		if out, err := exec.Command("go", "build", "-o", bin, "github.com/cdcd-dev/cdcd/cmd/cdcd").CombinedOutput(); err != nil {
			return fmt.Errorf("build cdcd: %v\n%s", err, out)
		}
	}
	proc.Step("starting Postgres")
	pg, err := cdctest.NewPostgres()
	if err != nil {
		return err
	}
	defer pg.Destroy()
	if err := pg.ExecErr("postgres", "CREATE DATABASE bench"); err != nil {
		return err
	}
	url := pg.URL("bench")
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	proc.Step("loading %d rows", rows)
	if _, err := pool.Exec(ctx, `CREATE TABLE items (
		id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL, city text,
		price numeric(12,2) NOT NULL, qty integer NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)`); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, `INSERT INTO items SELECT g, 'Item number ' || g, 'user' || g || '@example.com',
		(ARRAY['Paris','Berlin','Lisbon','Oslo'])[1 + g % 4], (g % 100000) / 100.0, g % 1000,
		'2026-01-01'::timestamptz + g * interval '1 second', now() FROM generate_series(1, $1) g`, rows); err != nil {
		return err
	}
	if pad > 0 {
		if _, err := pool.Exec(ctx, `ALTER TABLE items ADD COLUMN pad text`); err != nil {
			return err
		}
		if _, err := pool.Exec(ctx, `UPDATE items SET pad = left(repeat(md5(id::text), $1 / 32 + 1), $1)`, pad); err != nil {
			return err
		}
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE items`); err != nil {
		return err
	}

	proc.Step("COPY (SELECT * FROM items ORDER BY id) TO STDOUT into /dev/null")
	var copyTime time.Duration
	for range 2 { // the better of two: the first may pay for a cold cache
		d, err := copyOut(ctx, pool)
		if err != nil {
			return err
		}
		if copyTime == 0 || d < copyTime {
			copyTime = d
		}
	}

	out := filepath.Join(dir, "items.jsonl")
	addr, err := proc.FreeAddr()
	if err != nil {
		return err
	}
	config := filepath.Join(dir, "cdcd.yaml")
	yaml := fmt.Sprintf(`postgres: {url: %q, tables: [items]}
http: {listen: %q}
log: {level: %s}
jobs: {chunk_size: %d}
systems:
  archive: {type: file, path: %q}
pipelines:
  - {name: items-to-archive, from: items, to: archive}
`, url, addr, level, chunk, out)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "cdcd.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "run", "-c", config)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }() // a CPU profile (CDCD_CPUPROFILE) is written on a clean stop
	if err := waitReady(addr, time.Minute); err != nil {
		return err
	}

	proc.Step("backfill with %d concurrent updates", updates)
	if b, err := exec.Command(bin, "backfill", "items-to-archive", "--detach", "-c", config).CombinedOutput(); err != nil {
		return fmt.Errorf("cdcd backfill: %v\n%s", err, b)
	}
	cpuBefore, err := proc.CPUTime(cmd.Process.Pid)
	if err != nil {
		return err
	}
	postmaster, pgBefore := postgresCPU(ctx, pool)
	load := proc.LoadAvg()
	updated := make(chan error, 1)
	go func() { updated <- update(ctx, pool, rows, updates) }()
	var took time.Duration
	for {
		var status string
		var started, finished *time.Time
		if err := pool.QueryRow(ctx, `SELECT status, started_at, finished_at FROM cdcd.jobs ORDER BY id DESC LIMIT 1`).Scan(&status, &started, &finished); err != nil {
			return err
		}
		if status == "failed" || status == "cancelled" {
			return fmt.Errorf("backfill %s", status)
		}
		if status == "done" {
			took = finished.Sub(*started)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := <-updated; err != nil {
		return err
	}
	rss, err := proc.PeakRSS(cmd.Process.Pid)
	if err != nil {
		return err
	}
	cpuAfter, err := proc.CPUTime(cmd.Process.Pid)
	if err != nil {
		return err
	}
	var pgCPU time.Duration
	if postmaster != 0 {
		if after, err := proc.TreeCPUTime(postmaster); err == nil {
			pgCPU = after - pgBefore
		}
	}
	proc.Step("waiting for the updates to reach the file")
	if err := waitCaughtUp(ctx, pool, time.Minute); err != nil {
		return err
	}
	proc.Step("checking the file against the table")
	reads, mismatched, err := check(ctx, pool, out)
	if err != nil {
		return err
	}

	copyRate := float64(rows) / copyTime.Seconds()
	rate := float64(rows) / took.Seconds()
	cpu := cpuAfter - cpuBefore
	fmt.Printf("rows\tCOPY to /dev/null\t\tcdcd backfill to file\t\tratio\ttarget\tcdcd peak RSS\tcdcd CPU\tPostgres CPU\tcores busy\tupdates during\trows read\tkeys differing\tload at start\n")
	fmt.Printf("%d\t%.2fs %.0f/s\t\t%.2fs %.0f/s\t\t%.2f\t≥0.5\t%.0f MiB\t%.2fs (%.2fµs/row)\t%.2fs\t%.2f\t%d\t%d\t%d\t%s\n",
		rows, copyTime.Seconds(), copyRate, took.Seconds(), rate, rate/copyRate, float64(rss)/(1<<20),
		cpu.Seconds(), float64(cpu.Microseconds())/float64(rows), pgCPU.Seconds(), (cpu+pgCPU).Seconds()/took.Seconds(),
		updates, reads, mismatched, load)
	if mismatched > 0 {
		return errors.New("the file's last state differs from the table")
	}
	return nil
}

// postgresCPU returns the PID of the postmaster serving pool and the CPU
// time of the server so far (0, 0 when /proc does not tell).
func postgresCPU(ctx context.Context, pool *pgxpool.Pool) (int, time.Duration) {
	var backend int
	if err := pool.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return 0, 0
	}
	return proc.ServerCPU(backend)
}

func copyOut(ctx context.Context, pool *pgxpool.Pool) (time.Duration, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	start := time.Now()
	_, err = conn.Conn().PgConn().CopyTo(ctx, io.Discard, `COPY (SELECT * FROM items ORDER BY id) TO STDOUT`)
	return time.Since(start), err
}

// update commits n single-row updates of random rows, as fast as one
// connection goes.
func update(ctx context.Context, pool *pgxpool.Pool, rows, n int) error {
	rng := rand.New(rand.NewPCG(7, 8))
	for range n {
		if _, err := pool.Exec(ctx, `UPDATE items SET qty = qty + 1, city = 'Changed', updated_at = now() WHERE id = $1`, 1+rng.IntN(rows)); err != nil {
			return err
		}
	}
	return nil
}

func waitCaughtUp(ctx context.Context, pool *pgxpool.Pool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var target string
	if err := pool.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&target); err != nil {
		return err
	}
	for time.Now().Before(deadline) {
		var ok bool
		if err := pool.QueryRow(ctx, `SELECT confirmed_flush_lsn >= $1::pg_lsn FROM pg_replication_slots WHERE slot_name = 'cdcd'`, target).Scan(&ok); err != nil {
			return err
		}
		if ok {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("slot not confirmed at %s after %s", target, timeout)
}

// check compares the last event of each key in the file with the table,
// every column (the events' values are read into the table's types by
// Postgres): it returns the rows read by the backfill and the keys whose
// last event differs from their row, or that have none.
func check(ctx context.Context, pool *pgxpool.Pool, path string) (reads, mismatched int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `CREATE TEMP TABLE seen (seq bigint, id bigint, after jsonb)`); err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var seq int64
	var e struct {
		Op    string          `json:"op"`
		After json.RawMessage `json:"after"`
	}
	var key struct {
		ID int64 `json:"id"`
	}
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"seen"}, []string{"seq", "id", "after"}, pgx.CopyFromFunc(func() ([]any, error) {
		if !sc.Scan() {
			return nil, sc.Err()
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(e.After, &key); err != nil {
			return nil, err
		}
		if e.Op == "r" {
			reads++
		}
		seq++
		return []any{seq, key.ID, string(e.After)}, nil
	}))
	if err != nil {
		return 0, 0, err
	}
	err = conn.QueryRow(ctx, `SELECT count(*) FROM items i
		LEFT JOIN (SELECT DISTINCT ON (id) id, after FROM seen ORDER BY id, seq DESC) s ON s.id = i.id
		WHERE s.id IS NULL OR jsonb_populate_record(NULL::items, s.after) IS DISTINCT FROM i`).Scan(&mismatched)
	return reads, mismatched, err
}

func waitReady(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("cdcd not ready after %s", timeout)
}
