package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcd-dev/cdcd/deploy/bench/proc"
)

// sample is what the soak saw at one moment.
type sample struct {
	at       time.Duration    // since the load began
	loading  bool             // the load was still being driven
	rss      map[string]int64 // by process
	gor      map[string]int64 // go_goroutines, by process
	nextGC   map[string]int64 // go_memstats_next_gc_bytes, by process
	lag      int64            // Kafka: messages past the groups' committed offsets
	lagParts int              // the partitions lag covers
	outSent  int64            // outbound changes committed
	outSeen  int64            // requests the target answered
	inSent   int64            // inbound events answered 200
	rows     map[string]int64
	sizes    map[string]int64 // pg_total_relation_size
	loadAvg1 string
}

type sampler struct {
	procs   []*cdcdProc
	kafka   *kgo.Client       // nil on the embedded bus
	groups  map[string]string // with kafka, each consumer group's topic
	tgt     *target
	out     *outbound
	in      *inbound
	samples []sample
	tables  []string // every table seen, sorted
}

// take notes the tables of schema cdcd, from the catalog, each cdcd
// process's RSS and goroutines and, on Kafka, the consumer groups' lag.
func (s *sampler) take(ctx context.Context, conn *pgx.Conn, at time.Duration, loading bool) error {
	smp := sample{at: at, loading: loading, outSent: s.out.sent.Load(), outSeen: s.tgt.requests(), inSent: s.in.sent.Load(),
		rss: map[string]int64{}, gor: map[string]int64{}, nextGC: map[string]int64{},
		rows: map[string]int64{}, sizes: map[string]int64{}, loadAvg1: strings.Fields(proc.LoadAvg() + " ?")[0]}
	for _, p := range s.procs {
		rss, err := proc.RSS(p.cmd.Process.Pid)
		if err != nil {
			return fmt.Errorf("RSS of cdcd %s: %w", p.name, err)
		}
		smp.rss[p.name] = rss
		if smp.gor[p.name], smp.nextGC[p.name], err = p.runtime(ctx); err != nil {
			return fmt.Errorf("runtime metrics of cdcd %s: %w", p.name, err)
		}
	}
	if s.kafka != nil {
		var err error
		if smp.lag, smp.lagParts, err = groupLag(ctx, s.kafka, s.groups); err != nil {
			return fmt.Errorf("consumer lag: %w", err)
		}
	}
	rows, _ := conn.Query(ctx, `SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'cdcd' AND c.relkind IN ('r', 'p') ORDER BY 1`)
	var name string
	var size int64
	if _, err := pgx.ForEachRow(rows, []any{&name, &size}, func() error { smp.sizes[name] = size; return nil }); err != nil {
		return fmt.Errorf("cdcd's tables: %w", err)
	}
	for name := range smp.sizes {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM cdcd."+pgx.Identifier{name}.Sanitize()).Scan(&n); err != nil {
			return fmt.Errorf("count cdcd.%s: %w", name, err)
		}
		smp.rows[name] = n
		if !slices.Contains(s.tables, name) {
			s.tables = append(s.tables, name)
			slices.Sort(s.tables)
		}
	}
	s.samples = append(s.samples, smp)
	return nil
}

// progress prints the last sample on one line.
func (s *sampler) progress() {
	c := s.samples[len(s.samples)-1]
	var tables []string
	for _, t := range s.tables {
		if c.rows[t] > 0 {
			tables = append(tables, fmt.Sprintf("%s %d/%s", t, c.rows[t], kib(c.sizes[t])))
		}
	}
	var procs []string
	for _, p := range s.procs {
		procs = append(procs, fmt.Sprintf("%s %s %dg", p.name, mib(c.rss[p.name]), c.gor[p.name]))
	}
	lag := ""
	if s.kafka != nil {
		lag = fmt.Sprintf(" lag %d (%d partitions);", c.lag, c.lagParts)
	}
	proc.Step("%4.0fs out %d sent %d delivered, in %d sent; %s;%s %s", c.at.Seconds(), c.outSent, c.outSeen, c.inSent, strings.Join(procs, ", "), lag, strings.Join(tables, ", "))
}

// report prints, at about ten moments spread over the run, every
// table's rows and size, each cdcd process's RSS and goroutines, the
// consumer lag and the throughput since the moment before.
func (s *sampler) report(w io.Writer) {
	var picked []sample
	n := len(s.samples)
	for i := range 11 {
		j := i * (n - 1) / 10
		if len(picked) == 0 || picked[len(picked)-1].at != s.samples[j].at {
			picked = append(picked, s.samples[j])
		}
	}
	header := func(title string) {
		fmt.Fprintf(w, "%-26s", title)
		for _, p := range picked {
			fmt.Fprintf(w, " %9s", fmt.Sprintf("%.0fs", p.at.Seconds()))
		}
		fmt.Fprintln(w)
	}
	line := func(name string, f func(i int, p sample) string) {
		fmt.Fprintf(w, "%-26s", name)
		for i, p := range picked {
			fmt.Fprintf(w, " %9s", f(i, p))
		}
		fmt.Fprintln(w)
	}
	rate := func(i int, p sample, v func(sample) int64) string {
		if i == 0 {
			return "-"
		}
		q := picked[i-1]
		return fmt.Sprintf("%.0f", float64(v(p)-v(q))/(p.at-q.at).Seconds())
	}
	header("rows")
	for _, t := range s.tables {
		line(t, func(_ int, p sample) string { return fmt.Sprint(p.rows[t]) })
	}
	fmt.Fprintln(w)
	header("total size (KiB)")
	for _, t := range s.tables {
		line(t, func(_ int, p sample) string { return fmt.Sprint(p.sizes[t] >> 10) })
	}
	fmt.Fprintln(w)
	header("cdcd")
	for _, c := range s.procs {
		line(c.name+" RSS (MiB)", func(_ int, p sample) string { return fmt.Sprintf("%.1f", float64(p.rss[c.name])/(1<<20)) })
	}
	for _, c := range s.procs {
		line(c.name+" next GC (MiB)", func(_ int, p sample) string { return fmt.Sprintf("%.1f", float64(p.nextGC[c.name])/(1<<20)) })
	}
	for _, c := range s.procs {
		line(c.name+" goroutines", func(_ int, p sample) string { return fmt.Sprint(p.gor[c.name]) })
	}
	if s.kafka != nil {
		line("consumer lag (msgs)", func(_ int, p sample) string { return fmt.Sprint(p.lag) })
	}
	line("outbound committed/s", func(i int, p sample) string { return rate(i, p, func(s sample) int64 { return s.outSent }) })
	line("outbound delivered/s", func(i int, p sample) string { return rate(i, p, func(s sample) int64 { return s.outSeen }) })
	line("inbound accepted/s", func(i int, p sample) string { return rate(i, p, func(s sample) int64 { return s.inSent }) })
	line("load avg (1 min)", func(_ int, p sample) string { return p.loadAvg1 })
	fmt.Fprintln(w)
}

func kib(b int64) string { return fmt.Sprintf("%dKiB", b>>10) }
func mib(b int64) string { return fmt.Sprintf("%.0fMiB", float64(b)/(1<<20)) }
