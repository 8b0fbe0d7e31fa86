// Command soak runs cdcd for minutes under a steady two-way load and shows
// whether every table of schema cdcd and cdcd's memory stay flat once
// warmed up.
//
// cdcd runs as a user runs it: the built binary, `cdcd run`, the embedded
// bus, retention windows of -window instead of days. Two pipelines share
// one http system whose local target answers at once:
//
//   - outbound: changes to public.items (inserts, updates, deletes) at
//     -out-rate a second, each one request to the target;
//   - inbound: signed webhook deliveries of the same system's orders
//     (creates, updates, deletes) at -in-rate events a second, applied
//     into public.orders.
//
// Both keep a bounded set of live records (-keys, -in-keys): of every ten
// changes past the first fill, eight update a live record, one deletes the
// oldest, one creates a new one, so records are created and deleted for
// as long as the run lasts, as in months of operation.
//
// -kafka runs cdcd on the Kafka bus instead (kfake, one broker, in the
// bench process, whose memory is not counted: it keeps every record); its
// topics are created beforehand and the load waits for the consumer
// groups to be stable, so that no startup rebalance re-delivers. -split
// runs what users scale out with: one `cdcd run --role capture` process
// (the slot and the webhooks) and two `--role sinks` workers sharing each
// pipeline's consumer group; with -late-worker, the second one starts
// that long into the load, so that its groups rebalance under load (the
// target counts every create: one sent twice fails the arrival check).
//
// Every -sample it notes each cdcd table's rows and total size (tables
// are read from the catalog, so a new one is included), each cdcd
// process's resident set (VmRSS), go_goroutines and heap goal
// (go_memstats_next_gc_bytes, twice the live heap; from its /metrics), on
// Kafka the consumer groups' lag (messages past their committed offsets,
// from the broker) and the throughput; it prints them over time and a
// verdict (see verdict.go), then checks every change arrived: the
// target's requests and records, and the rows of public.orders.
//
//	go run ./deploy/bench/soak [-changes 1000000] [-out-rate 1000] [-in-rate 300] [-window 60s] [-kafka [-split]]
//
// It is not a test; docs/benchmarks.md records its results.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/cdc/kafkabus"
	"github.com/cdcd-dev/cdcd/deploy/bench/proc"
)

type options struct {
	changes         int
	outRate, inRate int
	keys, inKeys    int
	window, sample  time.Duration
	fsync, keep     bool
	kafka, split    bool
	lateWorker      time.Duration
	cdcdBin, log    string
}

func main() {
	var o options
	flag.IntVar(&o.changes, "changes", 1_000_000, "changes in all, shared between outbound and inbound in proportion to their rates")
	flag.IntVar(&o.outRate, "out-rate", 1000, "outbound changes a second (rows of public.items)")
	flag.IntVar(&o.inRate, "in-rate", 300, "inbound changes a second (webhook events)")
	flag.IntVar(&o.keys, "keys", 10_000, "live records of public.items")
	flag.IntVar(&o.inKeys, "in-keys", 5_000, "live records of the system's orders")
	flag.DurationVar(&o.window, "window", time.Minute, "every retention window and the inbound tombstone_ttl")
	flag.DurationVar(&o.sample, "sample", 10*time.Second, "how often tables and RSS are sampled")
	flag.BoolVar(&o.fsync, "fsync", false, "run Postgres with fsync and synchronous_commit on")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (config, cdcd's log)")
	flag.BoolVar(&o.kafka, "kafka", false, "run cdcd on the Kafka bus (kfake, one broker, in the bench process) instead of the embedded bus")
	flag.BoolVar(&o.split, "split", false, "with -kafka: run one `cdcd run --role capture` process and two `--role sinks` workers instead of one --role all")
	flag.DurationVar(&o.lateWorker, "late-worker", 0, "with -split: start the second sinks worker this long into the load instead of before it")
	flag.StringVar(&o.cdcdBin, "cdcd", "", "run this cdcd binary instead of building ./cmd/cdcd")
	flag.StringVar(&o.log, "log", "warn", "cdcd's log level")
	flag.Parse()
	if o.split && !o.kafka || o.lateWorker > 0 && !o.split {
		fmt.Fprintln(os.Stderr, "soak: -split needs -kafka, -late-worker needs -split")
		os.Exit(2)
	}
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	outN := int(int64(o.changes) * int64(o.outRate) / int64(o.outRate+o.inRate))
	inN := o.changes - outN
	planned := time.Duration(float64(o.changes) / float64(o.outRate+o.inRate) * float64(time.Second))
	if warm := planned / 5; warm < o.window+o.window/10 {
		proc.Step("warning: the warm-up (first 20%%, %s) is shorter than a window and its pruning (%s): tables cannot be flat by then", warm.Round(time.Second), o.window+o.window/10)
	}
	dir, err := os.MkdirTemp("", "cdcd-soak-")
	if err != nil {
		return err
	}
	if o.keep {
		defer fmt.Fprintln(os.Stderr, "kept", dir)
	} else {
		defer os.RemoveAll(dir)
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
	proc.Step("starting Postgres (fsync %v)", o.fsync)
	pg, err := cdctest.NewPostgres(settings...)
	if err != nil {
		return err
	}
	defer pg.Destroy()
	url := pg.URL("postgres")
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, q := range []string{
		`CREATE TABLE items (id bigint PRIMARY KEY, qty bigint NOT NULL, note text)`,
		`CREATE TABLE orders (id bigserial PRIMARY KEY, sku text NOT NULL UNIQUE, qty bigint)`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}

	tgt := startTarget()
	defer tgt.close()
	// Each pipeline's consumer group and topic.
	groups := map[string]string{
		"soak.items-to-erp":  kafkabus.TopicName("soak", "public", "items"),
		"soak.erp-to-orders": kafkabus.TopicName("soak", "erp", "orders"),
	}
	var kafkaCfg string
	var kcl *kgo.Client
	if o.kafka {
		proc.Step("starting kfake")
		broker, stop, err := proc.Kafka()
		if err != nil {
			return err
		}
		defer stop()
		kafkaCfg = proc.KafkaConfig(broker, "soak")
		if kcl, err = kgo.NewClient(kgo.SeedBrokers(broker)); err != nil {
			return err
		}
		defer kcl.Close()
		if err := createTopics(ctx, kcl, slices.Collect(maps.Values(groups))); err != nil {
			return err
		}
	}
	cfg := func(listen string) string {
		return fmt.Sprintf(config, url, listen, o.log, o.window, o.window, o.window, o.window, o.window, tgt.url, tgt.url, tgt.url, secret, o.window) + kafkaCfg
	}
	roles := [][2]string{{"cdcd", "all"}}
	if o.split {
		roles = [][2]string{{"capture", "capture"}, {"sinks-1", "sinks"}, {"sinks-2", "sinks"}}
	}
	var late [2]string
	if o.lateWorker > 0 {
		roles, late = roles[:2], roles[2]
	}
	var procs []*cdcdProc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	for _, r := range roles {
		proc.Step("starting cdcd %s (--role %s)", r[0], r[1])
		p, err := startCdcd(bin, dir, r[0], r[1], cfg)
		if err != nil {
			return err
		}
		procs = append(procs, p)
	}
	exited := anyExited(procs)
	if err := waitStreaming(ctx, conn, exited); err != nil {
		return err
	}
	if o.kafka {
		workers := 1
		if o.split && o.lateWorker == 0 {
			workers = 2
		}
		if err := waitGroups(ctx, kcl, groups, workers, exited); err != nil {
			return err
		}
	}

	loadStart := proc.LoadAvg()
	out := newOutbound(o.keys)
	in := newInbound(o.inKeys, "http://"+procs[0].listen+"/webhooks/erp")
	smp := &sampler{procs: procs, kafka: kcl, groups: groups, tgt: tgt, out: out, in: in}
	proc.Step("driving %d outbound changes at %d/s and %d inbound at %d/s (about %s), sampling every %s", outN, o.outRate, inN, o.inRate, planned.Round(time.Second), o.sample)
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	g, gctx := errgroup.WithContext(loadCtx)
	g.Go(func() error { return out.drive(gctx, url, outN, o.outRate) })
	g.Go(func() error { return in.drive(gctx, inN, o.inRate) })
	loadDone := make(chan error, 1)
	go func() { loadDone <- g.Wait() }()

	began := time.Now()
	tick := time.NewTicker(o.sample)
	defer tick.Stop()
	if err := smp.take(ctx, conn, 0, true); err != nil {
		return err
	}
	var joinLate <-chan time.Time
	if o.lateWorker > 0 {
		joinLate = time.After(o.lateWorker)
	}
	var loadEnd time.Duration
	for loadEnd == 0 {
		select {
		case <-joinLate:
			// Not sampled: its memory from zero would read as growth.
			proc.Step("starting cdcd %s (--role %s) under load", late[0], late[1])
			p, err := startCdcd(bin, dir, late[0], late[1], cfg)
			if err != nil {
				return err
			}
			procs = append(procs, p)
			exited = merge(exited, anyExited([]*cdcdProc{p}))
		case err := <-loadDone:
			if err != nil {
				return err
			}
			loadEnd = time.Since(began)
			proc.Step("load driven in %s", loadEnd.Round(time.Second))
		case err := <-exited:
			return err
		case <-tick.C:
			if err := smp.take(ctx, conn, time.Since(began), true); err != nil {
				return err
			}
			smp.progress()
		}
	}
	if err := smp.take(ctx, conn, time.Since(began), true); err != nil {
		return err
	}
	// Drain: the target and public.orders must reach what was sent.
	proc.Step("waiting for every change to arrive")
	deadline := time.Now().Add(5 * time.Minute)
	var missing error
	for {
		missing = arrived(ctx, conn, tgt, out, in)
		if missing == nil || time.Now().After(deadline) {
			break
		}
		select {
		case err := <-exited:
			return err
		case <-time.After(time.Second):
		}
	}
	if err := smp.take(ctx, conn, time.Since(began), false); err != nil {
		return err
	}
	var version string
	_ = conn.QueryRow(ctx, "SHOW server_version").Scan(&version)
	fmt.Printf("command:  go run ./deploy/bench/soak %s\n", strings.Join(os.Args[1:], " "))
	fmt.Printf("cdcd:     %s\n", o.bus())
	fmt.Printf("machine:  %d CPUs, %s/%s; PostgreSQL %s (fsync %v, autovacuum defaults), %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, version, o.fsync, runtime.Version())
	fmt.Printf("workload: %d outbound changes at %d/s (%d live items), %d inbound at %d/s (%d live orders, %d events a delivery); retention windows and tombstone_ttl %s\n",
		outN, o.outRate, o.keys, inN, o.inRate, o.inKeys, max(o.inRate/10, 1), o.window)
	fmt.Printf("load avg: %s at start, %s at the end; load driven in %s (%.0f changes/s)\n\n", loadStart, proc.LoadAvg(), loadEnd.Round(time.Second), float64(o.changes)/loadEnd.Seconds())
	smp.report(os.Stdout)
	flat := smp.verdict(os.Stdout, loadEnd, int64(o.outRate+o.inRate))
	fmt.Println()
	if missing != nil {
		fmt.Printf("arrived: NO: %v\n", missing)
	} else {
		tgt.mu.Lock()
		updates := tgt.seen["PUT"]
		tgt.mu.Unlock()
		fmt.Printf("arrived: yes: the target holds every live item (%d) as last written and saw every create (%d) and delete (%d), and %d update requests for %d updates (the rest coalesced);\n"+
			"         public.orders holds every live order (%d) as last sent, cdcd.inbox is empty\n",
			len(out.live), out.made['c'], out.made['d'], updates, out.made['u'], len(in.live))
	}
	if !flat || missing != nil {
		return errors.New("not flat, or not every change arrived")
	}
	return nil
}

// merge yields what a and b yield.
func merge(a, b <-chan error) <-chan error {
	ch := make(chan error, 2)
	go func() {
		select {
		case err := <-a:
			ch <- err
		case err := <-b:
			ch <- err
		}
	}()
	return ch
}

func (o options) bus() string {
	switch {
	case o.split:
		return "Kafka bus (kfake, 1 broker, in the bench process), one --role capture process and two --role sinks workers"
	case o.kafka:
		return "Kafka bus (kfake, 1 broker, in the bench process), one --role all process"
	}
	return "embedded bus, one process"
}

const secret = "soak-webhook-secret"

const config = `postgres:
  url: %q
  slot: soak
  publication: soak
  tables: [public.items]
  heartbeat: 0s
http:
  listen: %s
log:
  level: %s
retention:
  audit: %s
  health: %s
  webhook_deliveries: %s
  deleted_links: %s
  recent_writes: %s
systems:
  erp:
    type: http
    create: {method: POST, url: "%s/items"}
    update: {method: PUT, url: "%s/items/{{.ExternalID}}"}
    delete: {method: DELETE, url: "%s/items/{{.ExternalID}}"}
    id_path: id
    rate: {requests: 1000000, per: 1s}
    webhook:
      verify: hmac
      secret: %s
      header: X-Signature
      parse: json
      json:
        table: orders
        events: events
        id: id
        op: op
        ops: {create: c, update: u, delete: d}
        occurred_at: at
        occurred_at_unit: ms
        delivery_id: eid
        fields:
          - {name: sku, path: sku}
          - {name: qty, path: qty}
pipelines:
  - {name: items-to-erp, from: public.items, to: erp, object: items, concurrency: 16}
  - {name: erp-to-orders, from: erp, object: orders, to: public.orders, map: {sku: sku, qty: qty}, match: [sku], tombstone_ttl: %s}
`

// waitStreaming waits until cdcd reads its slot.
func waitStreaming(ctx context.Context, conn *pgx.Conn, exited <-chan error) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var active bool
		err := conn.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = 'soak'").Scan(&active)
		if err == nil && active {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("cdcd did not stream from its slot within 2 minutes")
		}
		select {
		case err := <-exited:
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}
