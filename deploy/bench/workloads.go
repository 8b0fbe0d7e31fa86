package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
)

// workload is one measured case: setup prepares its table before the
// slots exist, run makes the captured changes and returns how many rows
// they touched.
type workload struct {
	name   string
	title  string
	table  string
	target float64 // minimum cdcd/pg_recvlogical ratio; 0: memory only
	setup  func(ctx context.Context, b *bench) error
	run    func(ctx context.Context, b *bench) (int64, error)
}

// tableDDL is a table of typical columns: bigint key, text, integer,
// numeric, boolean, timestamptz.
const tableDDL = `CREATE TABLE %s (
	id bigint PRIMARY KEY,
	email text NOT NULL,
	name text NOT NULL,
	qty integer NOT NULL,
	price numeric(12,2) NOT NULL,
	active boolean NOT NULL,
	created_at timestamptz NOT NULL,
	note text)`

// insertSQL inserts rows with ids $1..$2.
const insertSQL = `INSERT INTO %s
SELECT g, 'user' || g || '@example.com', 'Customer ' || g, g %% 1000,
	(g %% 100000) / 100.0, g %% 2 = 0,
	timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second', md5(g::text)
FROM generate_series($1::bigint, $2::bigint) g`

// updateSQL updates the rows with ids $1..$2.
const updateSQL = `UPDATE %s SET qty = qty + 1, price = price + 1, active = NOT active WHERE id BETWEEN $1 AND $2`

func workloads(scale float64) []workload {
	n := func(full int) int64 { return max(1, int64(float64(full)*scale)) }
	inserts, updates := n(500_000), n(250_000)
	txns, big := n(100_000), n(1_000_000)
	return []workload{{
		name:   "a",
		title:  fmt.Sprintf("%s-row insert txn + %s updates", short(inserts), short(updates)),
		table:  "bench_a",
		target: 0.9,
		setup:  createTable("bench_a", 0),
		run: func(ctx context.Context, b *bench) (int64, error) {
			total, err := b.exec(ctx, fmt.Sprintf(insertSQL, "bench_a"), 1, inserts)
			if err != nil {
				return 0, err
			}
			// The updates come in five transactions.
			step := max(1, (updates+4)/5)
			for from := int64(1); from <= updates; from += step {
				k, err := b.exec(ctx, fmt.Sprintf(updateSQL, "bench_a"), from, min(from+step-1, updates))
				if err != nil {
					return 0, err
				}
				total += k
			}
			return total, nil
		},
	}, {
		name:   "b",
		title:  fmt.Sprintf("%s single-row update txns", short(txns)),
		table:  "bench_b",
		target: 0.9,
		setup:  createTable("bench_b", txns),
		run: func(ctx context.Context, b *bench) (int64, error) {
			return b.pgbench(ctx, "bench_b", txns)
		},
	}, {
		name:  "c",
		title: fmt.Sprintf("%s-row insert txn (memory)", short(big)),
		table: "bench_c",
		setup: createTable("bench_c", 0),
		run: func(ctx context.Context, b *bench) (int64, error) {
			return b.exec(ctx, fmt.Sprintf(insertSQL, "bench_c"), 1, big)
		},
	}}
}

// createTable creates the table and fills it with rows rows.
func createTable(table string, rows int64) func(context.Context, *bench) error {
	return func(ctx context.Context, b *bench) error {
		if _, err := b.exec(ctx, "DROP TABLE IF EXISTS "+table); err != nil {
			return err
		}
		if _, err := b.exec(ctx, fmt.Sprintf(tableDDL, table)); err != nil {
			return err
		}
		if rows > 0 {
			if _, err := b.exec(ctx, fmt.Sprintf(insertSQL, table), 1, rows); err != nil {
				return err
			}
		}
		_, err := b.exec(ctx, "VACUUM ANALYZE "+table)
		return err
	}
}

// exec runs one statement in its own transaction and returns the rows it
// touched.
func (b *bench) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := b.conn.Exec(ctx, sql, args...)
	if err != nil {
		return 0, fmt.Errorf("exec %.40q: %w", sql, err)
	}
	return tag.RowsAffected(), nil
}

// pgbenchClients run the single-row transactions in parallel.
const pgbenchClients = 4

var processedRe = regexp.MustCompile(`number of transactions actually processed: (\d+)`)

// pgbench runs at least txns single-row UPDATE transactions on table, whose
// ids are 1..txns, and returns how many committed.
func (b *bench) pgbench(ctx context.Context, table string, txns int64) (int64, error) {
	script := filepath.Join(b.dir, "update_"+table+".sql")
	body := fmt.Sprintf("\\set id random(1, %d)\nUPDATE %s SET qty = qty + 1, price = price + 1, active = NOT active WHERE id = :id;\n", txns, table)
	if err := os.WriteFile(script, []byte(body), 0o644); err != nil {
		return 0, err
	}
	perClient := (txns + pgbenchClients - 1) / pgbenchClients
	cmd := exec.CommandContext(ctx, filepath.Join(b.pg.BinDir(), "pgbench"),
		"-n", "-M", "prepared", "-c", strconv.Itoa(pgbenchClients), "-j", "2",
		"-t", strconv.FormatInt(perClient, 10), "-f", script,
		"-h", "127.0.0.1", "-p", strconv.Itoa(b.pg.Port), "-U", "postgres", "postgres")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgbench: %v: %s", err, out)
	}
	m := processedRe.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench: no transaction count in its output: %s", out)
	}
	return strconv.ParseInt(string(m[1]), 10, 64)
}

// short writes 500000 as 500k and 1000000 as 1M.
func short(n int64) string {
	switch {
	case n >= 1_000_000 && n%100_000 == 0:
		return strconv.FormatFloat(float64(n)/1e6, 'f', -1, 64) + "M"
	case n >= 1000 && n%100 == 0:
		return strconv.FormatFloat(float64(n)/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatInt(n, 10)
}
