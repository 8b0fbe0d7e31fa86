// Command bench measures cdcd's capture throughput against the ceiling set
// by Postgres's own decoder: for each workload, pg_recvlogical (pgoutput,
// to /dev/null) and the cdcd binary (to an in-process Kafka, acks=all)
// stream the same WAL from two slots created before it was written. cdcd's
// clock stops when its slot's confirmed_flush_lsn reaches the end of the
// workload, so its figure is end to end: decoded, acknowledged by Kafka and
// confirmed to Postgres.
//
//	go run ./deploy/bench [-scale 0.1] [-keep] [-cpuprofile dir] [-cdcd path]
//
// It is not a test; docs/benchmarks.md records its results.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/deploy/bench/proc"
)

// bench holds what every workload shares.
type bench struct {
	dir        string
	pg         *cdctest.Postgres
	conn       *pgx.Conn // makes the changes
	poll       *pgx.Conn // watches the slots
	brokers    []string
	cdcdBin    string
	profileDir string
	kafkaExtra string // more keys of cdcd's kafka section
	cdcdFirst  bool   // stream with cdcd before pg_recvlogical
	noop       *noop  // the endpoint of the attached HTTP pipeline, if any
}

// measurement is one workload's line of the report.
type measurement struct {
	w       workload
	changes int64
	inKafka int64
	recv    result
	cdcd    result
}

func main() {
	scale := flag.Float64("scale", 1.0, "fraction of the full workload sizes")
	keep := flag.Bool("keep", false, "keep the temporary directories (Postgres data, configs, cdcd logs)")
	profileDir := flag.String("cpuprofile", "", "write cdcd's CPU profiles to `dir`/cdcd-<workload>.pprof")
	only := flag.String("only", "abc", "workloads to run")
	batchSize := flag.Int("kafka-batch-size", 0, "cdcd's kafka.batch.size (0: cdcd's default)")
	cdcdBin := flag.String("cdcd", "", "run this cdcd binary instead of building ./cmd/cdcd")
	blackhole := flag.Bool("blackhole", false, "make kfake discard records after acknowledging them (takes broker storage out of the figures)")
	httpPipe := flag.Bool("http-pipeline", false, "attach one generic HTTP pipeline to a local no-op endpoint (Kafka mode, same process)")
	cdcdFirst := flag.Bool("cdcd-first", false, "stream with cdcd before pg_recvlogical (the first reader of fresh WAL tends to pay more)")
	flag.Parse()
	if *scale <= 0 {
		fmt.Fprintln(os.Stderr, "bench: -scale must be positive")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	o := options{scale: *scale, keep: *keep, profileDir: *profileDir, only: *only, cdcdBin: *cdcdBin,
		batchSize: *batchSize, blackhole: *blackhole, cdcdFirst: *cdcdFirst, httpPipeline: *httpPipe}
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	scale                     float64
	keep, blackhole           bool
	profileDir, only, cdcdBin string
	batchSize                 int
	cdcdFirst, httpPipeline   bool
}

func run(ctx context.Context, o options) (err error) {
	scale, keep, profileDir, only, cdcdBin, batchSize, blackhole := o.scale, o.keep, o.profileDir, o.only, o.cdcdBin, o.batchSize, o.blackhole
	b := &bench{cdcdFirst: o.cdcdFirst}
	if o.httpPipeline {
		b.noop = startNoop()
		defer b.noop.close()
	}
	if batchSize > 0 {
		b.kafkaExtra = fmt.Sprintf("\n  batch: {size: %d}", batchSize)
	}
	if b.dir, err = os.MkdirTemp("", "cdcd-bench-"); err != nil {
		return err
	}
	if keep {
		defer fmt.Fprintln(os.Stderr, "kept", b.dir)
	} else {
		defer os.RemoveAll(b.dir)
	}
	if profileDir != "" {
		if b.profileDir, err = filepath.Abs(profileDir); err != nil {
			return err
		}
		if err := os.MkdirAll(b.profileDir, 0o755); err != nil {
			return err
		}
	}

	if cdcdBin != "" {
		b.cdcdBin = cdcdBin
	} else {
		b.cdcdBin = filepath.Join(b.dir, "cdcd")
		proc.Step(" building cdcd")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", b.cdcdBin, "github.com/cdcd-dev/cdcd/cmd/cdcd").CombinedOutput(); err != nil {
			return fmt.Errorf("go build cdcd: %v: %s", err, out)
		}
	}

	proc.Step(" starting Postgres and kfake")
	if b.pg, err = cdctest.NewPostgres("max_wal_size = 8GB"); err != nil {
		return err
	}
	if keep {
		defer func() { _ = b.pg.Stop("fast"); fmt.Fprintln(os.Stderr, "kept", b.pg.Dir()) }()
	} else {
		defer b.pg.Destroy()
	}
	opts := []kfake.Opt{kfake.NumBrokers(1)}
	if blackhole {
		opts = append(opts, kfake.BlackholeProduce())
	}
	kafka, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("start kfake: %w", err)
	}
	defer kafka.Close()
	b.brokers = kafka.ListenAddrs()

	if b.conn, err = pgx.Connect(ctx, b.pg.URL("postgres")); err != nil {
		return err
	}
	defer b.conn.Close(context.WithoutCancel(ctx))
	if b.poll, err = pgx.Connect(ctx, b.pg.URL("postgres")); err != nil {
		return err
	}
	defer b.poll.Close(context.WithoutCancel(ctx))

	env, err := b.environment(ctx)
	if err != nil {
		return err
	}
	env.batchSize = batchSize
	var results []measurement
	for _, w := range workloads(scale) {
		if !strings.Contains(only, w.name) {
			continue
		}
		proc.Step("(%s) %s", w.name, w.title)
		m, err := b.measure(ctx, w)
		if err != nil {
			return fmt.Errorf("workload %s: %w", w.name, err)
		}
		results = append(results, m)
	}
	env.loadEnd = proc.LoadAvg()
	report(os.Stdout, env, results, blackhole)
	return nil
}

// measure prepares the workload, creates its publication and slots, makes
// the changes and times both readers over them.
func (b *bench) measure(ctx context.Context, w workload) (m measurement, err error) {
	m.w = w
	if err := w.setup(ctx, b); err != nil {
		return m, err
	}
	pub, pgSlot, cdcdSlot := "bench_"+w.name, "s_pg_"+w.name, "s_cdcd_"+w.name
	if _, err := b.exec(ctx, fmt.Sprintf("DROP PUBLICATION IF EXISTS %s; CREATE PUBLICATION %[1]s FOR TABLE %s", pub, w.table)); err != nil {
		return m, err
	}
	for _, slot := range []string{pgSlot, cdcdSlot} {
		if _, err := b.exec(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", slot); err != nil {
			return m, err
		}
		defer func() { err = errors.Join(err, b.dropSlot(context.WithoutCancel(ctx), slot)) }()
	}
	if _, err := b.exec(ctx, "CHECKPOINT"); err != nil {
		return m, err
	}

	began := time.Now()
	if m.changes, err = w.run(ctx, b); err != nil {
		return m, err
	}
	var end string
	if err := b.conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&end); err != nil {
		return m, err
	}
	proc.Step("    %d changes written in %.1f s; WAL ends at %s", m.changes, time.Since(began).Seconds(), end)

	readers := []func() error{
		func() (err error) {
			m.recv, err = b.recvlogical(ctx, pgSlot, pub, end)
			proc.Step("    pg_recvlogical: %.2f s", m.recv.elapsed.Seconds())
			return err
		},
		func() (err error) {
			m.cdcd, err = b.cdcd(ctx, w, cdcdSlot, pub, end)
			proc.Step("    cdcd: %.2f s", m.cdcd.elapsed.Seconds())
			if b.noop != nil {
				proc.Step("    http pipeline: %d requests delivered by then", b.noop.requests.Swap(0))
			}
			return err
		},
	}
	if b.cdcdFirst {
		readers[0], readers[1] = readers[1], readers[0]
	}
	for _, read := range readers {
		if err := read(); err != nil {
			return m, err
		}
	}
	if m.inKafka, err = topicRecords(ctx, b.brokers, "cdcd.public."+w.table); err != nil {
		return m, err
	}
	_, err = b.exec(ctx, "DROP TABLE "+w.table)
	return m, err
}

// dropSlot drops a slot once its last reader has let go of it.
func (b *bench) dropSlot(ctx context.Context, slot string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := b.exec(ctx, "SELECT pg_drop_replication_slot($1)", slot)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
