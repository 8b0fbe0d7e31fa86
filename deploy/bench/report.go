package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cdcd-dev/cdcd/deploy/bench/proc"
)

// environment describes the machine the figures were taken on.
type environment struct {
	cpus               int
	memory             string
	postgres           string
	loadStart, loadEnd string
	batchSize          int // cdcd's kafka.batch.size when set by -kafka-batch-size
}

func (b *bench) environment(ctx context.Context) (environment, error) {
	env := environment{cpus: runtime.NumCPU(), memory: memTotal(), loadStart: proc.LoadAvg()}
	err := b.conn.QueryRow(ctx, "SHOW server_version").Scan(&env.postgres)
	return env, err
}

// memTotal is MemTotal from /proc/meminfo, in GiB.
func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "?"
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return "?"
			}
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "?"
}

// report prints the command, the machine and one line per workload.
func report(out io.Writer, env environment, ms []measurement, blackhole bool) {
	fmt.Fprintln(out, "command: ", strings.Join(append([]string{"go run ./deploy/bench"}, os.Args[1:]...), " "))
	fmt.Fprintf(out, "machine:  %d CPUs, %s RAM, %s/%s; PostgreSQL %s, %s\n",
		env.cpus, env.memory, runtime.GOOS, runtime.GOARCH, env.postgres, runtime.Version())
	fmt.Fprintf(out, "load avg: %s at start, %s at end\n", env.loadStart, env.loadEnd)
	kafka := "kfake, 1 broker, in the bench process, records kept in memory"
	if blackhole {
		kafka = "kfake, 1 broker, in the bench process, records discarded after the ack"
	}
	if env.batchSize > 0 {
		kafka += fmt.Sprintf("; cdcd kafka.batch.size %d", env.batchSize)
	}
	fmt.Fprintf(out, "kafka:    %s; cdcd status_interval %v\n\n", kafka, statusInterval)

	width := 0
	for _, m := range ms {
		width = max(width, len(m.w.title)+3)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\t", width, "workload")
	fmt.Fprintln(tw, "changes\tin kafka\tpg_recvlogical\t\tcdcd\t\tratio\ttarget\tcdcd peak RSS\tCPU s: cdcd\twalsender\tkfake\trecvlogical's walsender\t")
	for _, m := range ms {
		target := "-"
		if m.w.target > 0 {
			target = fmt.Sprintf("≥ %.2f", m.w.target)
		}
		ratio := m.recv.elapsed.Seconds() / m.cdcd.elapsed.Seconds()
		fmt.Fprintf(tw, "%-*s\t%d\t%d\t%s\t%s\t%s\t%s\t%.2f\t%s\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t\n",
			width, m.w.name+") "+m.w.title, m.changes, m.inKafka,
			rate(m.changes, m.recv.elapsed), secs(m.recv.elapsed),
			rate(m.changes, m.cdcd.elapsed), secs(m.cdcd.elapsed),
			ratio, target, mib(m.cdcd.peakRSS),
			m.cdcd.cpu.Seconds(), m.cdcd.walsender.Seconds(), m.cdcd.bench.Seconds(), m.recv.walsender.Seconds())
	}
	tw.Flush()
	for _, m := range ms {
		if m.inKafka != m.changes {
			fmt.Fprintf(out, "\nworkload %s: Kafka holds %d records for %d changes\n", m.w.name, m.inKafka, m.changes)
		}
	}
	fmt.Fprintln(out, "\nrates are changes/s; ratio = cdcd rate / pg_recvlogical rate; cdcd time runs from process start to the slot confirmed at the end of the workload's WAL;")
	fmt.Fprintln(out, "CPU s: user+system seconds during the cdcd run of cdcd, of the walsender decoding for it and of the bench process (kfake), and of the walsender decoding for pg_recvlogical")
}

func rate(n int64, d time.Duration) string {
	return fmt.Sprintf("%.1fk/s", float64(n)/d.Seconds()/1000)
}

func secs(d time.Duration) string { return fmt.Sprintf("(%.2f s)", d.Seconds()) }

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }
