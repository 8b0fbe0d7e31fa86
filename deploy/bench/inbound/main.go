// Command inbound measures the inbound apply path against the fastest
// plain way to write the same rows: n changes of a system (one per record,
// ten columns) are put in cdcd.inbox, then pumped through the in-process
// bus and the delivery engine into public.contacts by the Postgres writer
// (matched on email, links and apply state kept, conflict checks on,
// every transaction tagged with the system's origin). Side by side in the
// same run, the same rows go into a fresh copy of the table by INSERT …
// ON CONFLICT DO UPDATE from unnest arrays, 1,000 rows a statement.
//
// Two rounds: the changes create the records (none linked yet), then they
// update every record (each linked, so each is compared for conflicts).
//
//	go run ./deploy/bench/inbound [-changes 100000] [-cpuprofile file] [-statements]
//
// -statements prints, after each of cdcd's rounds, the statements
// Postgres spent the most executor time on (pg_stat_statements).
//
// It is not a test; docs/benchmarks.md records its results.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/conflict"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/deploy/bench/proc"
	"github.com/cdcd-dev/cdcd/sinks/postgres"
	"github.com/cdcd-dev/cdcd/sources/inbox"
	"github.com/cdcd-dev/cdcd/sources/webhook"
	"github.com/cdcd-dev/cdcd/store"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// columns maps the system's fields to the table's columns.
var columns = map[string]string{
	"email": "email", "firstname": "first_name", "lastname": "last_name", "phone": "phone", "company": "company",
	"city": "city", "country": "country", "score": "score", "lastseen": "last_seen",
}

// fields are the system's fields in the table's column order.
var fields = []string{"email", "firstname", "lastname", "phone", "company", "city", "country", "score", "lastseen"}

const ddl = `(id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, first_name text, last_name text, phone text,
	company text, city text, country text, score integer, last_seen timestamptz)`

func main() {
	n := flag.Int("changes", 100_000, "changes per round")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the apply rounds to this file")
	flag.BoolVar(&statements, "statements", false, "print the statements of each cdcd round that took the most executor time (pg_stat_statements)")
	flag.Parse()
	if err := run(*n, *cpuprofile); err != nil {
		fmt.Fprintln(os.Stderr, "inbound:", err)
		os.Exit(1)
	}
}

// statements is -statements.
var statements bool

func run(n int, cpuprofile string) error {
	ctx := context.Background()
	fmt.Fprintln(os.Stderr, "starting Postgres (fsync on, synchronous_commit on)...")
	settings := []string{"fsync = on", "synchronous_commit = on", "full_page_writes = on", "wal_level = logical"}
	if statements {
		settings = append(settings, "shared_preload_libraries = pg_stat_statements")
	}
	pg, err := cdctest.NewPostgres(settings...)
	if err != nil {
		return err
	}
	defer pg.Destroy()
	url := pg.URL("postgres")
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	st, err := store.Open(ctx, url, zerolog.Nop())
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE contacts `+ddl+`; CREATE TABLE plain `+ddl); err != nil {
		return err
	}
	if statements {
		if _, err := pool.Exec(ctx, `CREATE EXTENSION pg_stat_statements`); err != nil {
			return err
		}
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Printf("inbound apply: %d changes a round into a 10-column table, %d CPUs, load average %s\n\n", n, runtime.NumCPU(), proc.LoadAvg())
	fmt.Printf("| round | cdcd apply | unnest upsert, 1,000 rows a statement | ratio (target ≥ 0.5) | cdcd peak RSS |\n|---|---|---|---|---|\n")
	start := time.Now().Add(-time.Hour)
	for round, name := range []string{"create", "update"} {
		at := start.Add(time.Duration(round) * time.Minute)
		if statements {
			if _, err := pool.Exec(ctx, `SELECT pg_stat_statements_reset()`); err != nil {
				return err
			}
		}
		cdcd, rss, err := viaCdcd(ctx, pool, url, n, round, at)
		if err != nil {
			return err
		}
		if statements {
			if err := printStatements(ctx, pool, name); err != nil {
				return err
			}
		}
		plain, err := viaUnnest(ctx, pool, n, round, at)
		if err != nil {
			return err
		}
		fmt.Printf("| %s | %s, %.0f rows/s | %s, %.0f rows/s | %.2f | %d MiB |\n", name,
			cdcd.Round(time.Millisecond), float64(n)/cdcd.Seconds(), plain.Round(time.Millisecond), float64(n)/plain.Seconds(),
			plain.Seconds()/cdcd.Seconds(), rss>>20)
	}
	var linked, same int64
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM cdcd.links WHERE system = 'hubspot'),
		(SELECT count(*) FROM contacts c JOIN plain p USING (email) WHERE (c.first_name, c.last_name, c.phone, c.company, c.city, c.country, c.score, c.last_seen)
			IS NOT DISTINCT FROM (p.first_name, p.last_name, p.phone, p.company, p.city, p.country, p.score, p.last_seen))`).Scan(&linked, &same); err != nil {
		return err
	}
	fmt.Printf("\nlinks: %d; rows equal in both tables: %d of %d; load average after: %s\n", linked, same, n, proc.LoadAvg())
	if linked != int64(n) || same != int64(n) {
		return fmt.Errorf("the two tables differ or links are missing")
	}
	return nil
}

// change is record i's change in a round: round 0 creates it, later
// rounds update every field but the email.
func change(round, i int, at time.Time) webhook.Change {
	id := strconv.Itoa(1_000_000 + i)
	v := func(s string) json.RawMessage { return cdc.AppendJSONString(nil, s) }
	after := cdc.Row{
		{Name: "email", Value: v(fmt.Sprintf("c%d@example.com", i))},
		{Name: "firstname", Value: v(fmt.Sprintf("First%d-%d", i, round))},
		{Name: "lastname", Value: v(fmt.Sprintf("Last%d", i))},
		{Name: "phone", Value: v(fmt.Sprintf("+1555%07d", i))},
		{Name: "company", Value: v(fmt.Sprintf("Company %d", i%977))},
		{Name: "city", Value: v(fmt.Sprintf("City %d", i%113))},
		{Name: "country", Value: v(fmt.Sprintf("r%d", round))},
		{Name: "score", Value: json.RawMessage(strconv.Itoa(i%100 + round))},
		{Name: "lastseen", Value: v(at.Add(time.Duration(i) * time.Millisecond).UTC().Format("2006-01-02T15:04:05.000000Z"))},
	}
	op := cdc.OpCreate
	if round > 0 {
		op = cdc.OpUpdate
	}
	return webhook.Change{Event: cdc.Event{
		Op: op, Source: "hubspot", Schema: "hubspot", Table: "contacts",
		Key: cdc.Row{{Name: "id", Value: v(id)}}, After: after,
		CommitTime: at.Add(time.Duration(i) * time.Millisecond), DeliveryID: fmt.Sprintf("%d-%d", round, i),
	}}
}

// viaCdcd puts the round's n changes in the inbox, then times their apply by cdcd
// until every row carries the round's mark. It returns the time and the
// process's peak RSS over the apply.
func viaCdcd(ctx context.Context, pool *pgxpool.Pool, url string, n, round int, at time.Time) (time.Duration, int64, error) {
	log := zerolog.New(os.Stderr).Level(zerolog.WarnLevel)
	ib, err := inbox.Open(ctx, pool, inbox.Config{Deployment: "bench"}, log, nil)
	if err != nil {
		return 0, 0, err
	}
	defer ib.Close()
	for i := 0; i < n; i += 1000 {
		chunk := make([]webhook.Change, 0, 1000)
		for j := i; j < min(i+1000, n); j++ {
			chunk = append(chunk, change(round, j, at))
		}
		if err := ib.Accept(ctx, "hubspot", chunk); err != nil {
			return 0, 0, err
		}
	}
	pcfg := postgres.DefaultConfig()
	pcfg.URL, pcfg.Table, pcfg.Match = url, "public.contacts", []string{"email"}
	w, err := postgres.New("hubspot", pcfg, postgres.Inbound{Object: "contacts", Conflicts: &postgres.Conflicts{
		Pipeline: "hubspot-to-contacts", Columns: columns,
		Policy: conflict.Policy{Rules: []conflict.Rule{{Kind: conflict.KindNewest}}},
	}}, config.Env{Log: log})
	if err != nil {
		return 0, 0, err
	}
	defer w.Close(ctx)
	p, err := delivery.NewPipeline(delivery.PipelineConfig{Name: "hubspot-to-contacts", System: "public.contacts", Object: "contacts", Concurrency: 4},
		mapper{}, w, delivery.Stores{}, log, nil)
	if err != nil {
		return 0, 0, err
	}
	bus := cdc.NewLocalBus(cdc.LocalBusConfig{}, []cdc.Route{{Name: "hubspot-to-contacts", System: "public.contacts", Sink: p}}, log, nil)
	defer bus.Close(context.Background())
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	runtime.GC()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil { // resets VmHWM
		return 0, 0, err
	}
	// The inbox is empty once every change was applied and its row
	// deleted. Asking that is a probe of the inbox's index, on a
	// connection that never scans the table: counting the marked rows
	// scanned the table every 50 ms (a fifth of Postgres's time in cdcd's
	// round), and EXISTS over the inbox was planned as a scan of it, its
	// deleted rows included (0.3–2.8 s of Postgres's time a round).
	probe, err := pool.Acquire(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer probe.Release()
	if _, err := probe.Exec(ctx, "SET enable_seqscan = off"); err != nil {
		return 0, 0, err
	}
	defer probe.Exec(context.Background(), "RESET enable_seqscan") //nolint:errcheck // the pool's connection goes back as it was
	mark := fmt.Sprintf("r%d", round)
	start := time.Now()
	go ib.Run(runCtx, bus)
	for {
		if time.Since(start) > 20*time.Minute {
			return 0, 0, fmt.Errorf("changes still in the inbox after 20 minutes")
		}
		time.Sleep(50 * time.Millisecond)
		var id int64
		err := probe.QueryRow(ctx, `SELECT id FROM cdcd.inbox WHERE deployment = 'bench' ORDER BY deployment, id LIMIT 1`).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			break
		}
		if err != nil {
			return 0, 0, err
		}
	}
	elapsed := time.Since(start)
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM contacts WHERE country = $1`, mark).Scan(&rows); err != nil {
		return 0, 0, err
	}
	if rows != n {
		return 0, 0, fmt.Errorf("the inbox is empty but %d of %d rows carry the round's change", rows, n)
	}
	rss, err := proc.PeakRSS(os.Getpid())
	return elapsed, rss, err
}

// viaUnnest writes the round's n changes' rows into public.plain by INSERT … ON
// CONFLICT DO UPDATE from unnest arrays, 1,000 rows a statement, each
// statement its own transaction.
func viaUnnest(ctx context.Context, pool *pgxpool.Pool, n, round int, at time.Time) (time.Duration, error) {
	var batches [][][]*string // per statement, per column, the values
	for i := 0; i < n; i += 1000 {
		cols := make([][]*string, len(fields))
		for j := i; j < min(i+1000, n); j++ {
			ch := change(round, j, at)
			for c, f := range fields {
				raw, _ := ch.After.Get(f)
				var s string
				if json.Unmarshal(raw, &s) != nil {
					s = string(raw)
				}
				cols[c] = append(cols[c], &s)
			}
		}
		batches = append(batches, cols)
	}
	start := time.Now()
	for _, cols := range batches {
		_, err := pool.Exec(ctx, `INSERT INTO plain (email, first_name, last_name, phone, company, city, country, score, last_seen)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[], $9::timestamptz[])
			ON CONFLICT (email) DO UPDATE SET first_name = excluded.first_name, last_name = excluded.last_name, phone = excluded.phone,
				company = excluded.company, city = excluded.city, country = excluded.country, score = excluded.score, last_seen = excluded.last_seen`,
			cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8])
		if err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// mapper maps the system's fields to the table's columns.
type mapper struct{}

func (mapper) Map(_ context.Context, e *cdc.Event) (syncapi.Record, bool, error) {
	out := make(map[string]any, len(e.After))
	for _, f := range e.After {
		col, ok := columns[f.Name]
		if !ok {
			continue
		}
		v, err := cdc.DecodeValue(f.Value) // as transform's mapping does, without a Decoder for a plain value
		if err != nil {
			return syncapi.Record{}, false, err
		}
		out[col] = v
	}
	return syncapi.Record{Op: e.Op, Object: "contacts", Key: string(cdc.AppendKey(nil, e)), Fields: out}, true, nil
}

// printStatements writes to stderr the ten statements of the round that
// took the most executor time, with their calls and rows.
func printStatements(ctx context.Context, pool *pgxpool.Pool, round string) error {
	rows, err := pool.Query(ctx, `SELECT calls, rows, round(total_exec_time)::bigint, regexp_replace(left(query, 90), '\s+', ' ', 'g')
		FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 10`)
	if err != nil {
		return err
	}
	defer rows.Close()
	fmt.Fprintf(os.Stderr, "%s round, statements by executor time:\n", round)
	for rows.Next() {
		var calls, n, ms int64
		var q string
		if err := rows.Scan(&calls, &n, &ms, &q); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "  %7d ms %6d calls %8d rows  %s\n", ms, calls, n, q)
	}
	return rows.Err()
}
