package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/deploy/bench/proc"
)

// pgProcesses is the CPU time of each of the postmaster's children so
// far, by PID, with the kind of process its title names.
type pgProcesses map[int]pgProcess

type pgProcess struct {
	kind string
	cpu  time.Duration
}

// pgChildren reads the postmaster's children from /proc: a backend is
// named by its database, the others by their title (walsender,
// checkpointer, walwriter, autovacuum worker…).
func pgChildren(postmaster int) pgProcesses {
	out := pgProcesses{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if parent, err := proc.ParentPID(pid); err != nil || parent != postmaster {
			continue
		}
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		cpu, err := proc.CPUTime(pid)
		if err != nil {
			continue
		}
		out[pid] = pgProcess{kind: pgKind(strings.TrimRight(string(cmd), "\x00")), cpu: cpu}
	}
	return out
}

// pgKind names a server process by its title: "postgres: walsender …",
// "postgres: <user> <database> <client> <state>", "postgres: checkpointer".
func pgKind(title string) string {
	f := strings.Fields(strings.TrimPrefix(title, "postgres: "))
	switch {
	case len(f) == 0:
		return "?"
	case f[0] == "walsender":
		return "walsender"
	case len(f) >= 3 && strings.Contains(f[2], "("):
		return "backends of " + f[1]
	case len(f) >= 2 && f[1] == "worker":
		return f[0] + " worker"
	default:
		return f[0]
	}
}

// printPostgresWork prints the CPU each kind of server process used since
// before and the statements of conn's database that took the most
// executor time (pg_stat_statements, reset before cdcd started).
func printPostgresWork(ctx context.Context, conn *pgx.Conn, postmaster int, before pgProcesses, rows int) error {
	by := map[string]time.Duration{}
	for pid, p := range pgChildren(postmaster) {
		by[p.kind] += p.cpu - before[pid].cpu
	}
	kinds := make([]string, 0, len(by))
	for k := range by {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return by[kinds[i]] > by[kinds[j]] })
	fmt.Fprintf(os.Stderr, "Postgres CPU by process (live processes only):\n")
	for _, k := range kinds {
		if by[k] > 0 {
			fmt.Fprintf(os.Stderr, "  %-28s %6.2f s  %5.1f µs a row\n", k, by[k].Seconds(), float64(by[k].Microseconds())/float64(rows))
		}
	}
	q, err := conn.Query(ctx, `SELECT calls, rows, total_exec_time, shared_blks_dirtied, wal_bytes, regexp_replace(left(query, 100), '\s+', ' ', 'g')
		FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY total_exec_time DESC LIMIT 10`)
	if err != nil {
		return err
	}
	defer q.Close()
	fmt.Fprintf(os.Stderr, "statements by executor time:\n")
	for q.Next() {
		var calls, n, dirtied int64
		var ms float64
		var wal string
		var text string
		if err := q.Scan(&calls, &n, &ms, &dirtied, &wal, &text); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "  %7.0f ms %5.1f µs/row %6d calls %7d rows %9s WAL bytes  %s\n", ms, ms*1000/float64(rows), calls, n, wal, text)
	}
	return q.Err()
}
