package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/e2e/e2etest"
)

// TestKilledBackfillFinishes kills cdcd with SIGKILL twice in the middle
// of a backfill, while the table keeps changing, and starts it again each
// time. The job is taken up from its cursor once its lease lapsed and
// finishes; the file then holds every row of the table as it is (the last
// event of each key equals the row), and a row was read more than once
// only within the chunk each kill cut short.
func TestKilledBackfillFinishes(t *testing.T) {
	backfillCutTwice(t, "3s", func(t *testing.T, _ *cdctest.Postgres, d *daemon) {
		d.kill()
		d.start()
		d.waitReady(60 * time.Second)
	})
}

// TestBackfillGoesOnAfterPostgresRestarts restarts Postgres twice in the
// middle of a backfill: the job's connections are cut, and it runs again
// from its cursor by itself (its lease, 10m, never lapses), with the same
// outcome as after a kill.
func TestBackfillGoesOnAfterPostgresRestarts(t *testing.T) {
	backfillCutTwice(t, "10m", func(t *testing.T, pg *cdctest.Postgres, _ *daemon) {
		if err := pg.Stop("fast"); err != nil {
			t.Fatal(err)
		}
		if err := pg.Start(); err != nil {
			t.Fatal(err)
		}
	})
}

// backfillCutTwice backfills a changing table into a file and calls cut
// twice while it runs; the backfill must end done with the file holding
// the table, and a row read more than once only within the chunk each cut
// cut short.
func backfillCutTwice(t *testing.T, lease string, cut func(*testing.T, *cdctest.Postgres, *daemon)) {
	needsServers(t)
	t.Parallel()
	const rows, chunk, kills = 40000, 500, 2
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", fmt.Sprintf(`CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL, at timestamptz NOT NULL DEFAULT now());
		INSERT INTO items (id, name, qty) SELECT g, 'item ' || g, g FROM generate_series(1, %d) g`, rows))
	dir := t.TempDir()
	out := filepath.Join(dir, "items.jsonl")
	addr := e2etest.FreeAddr(t)
	config := filepath.Join(dir, "cdcd.yaml")
	yaml := fmt.Sprintf(`postgres: {url: %q, tables: [items], status_interval: 100ms}
http: {listen: %q}
jobs: {lease: %s, chunk_size: %d}
systems:
  archive: {type: file, path: %q}
pipelines:
  - {name: items-to-archive, from: items, to: archive}
`, url, addr, lease, chunk, out)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, config, addr)
	d.waitReady(60 * time.Second)
	pool, err := newPool(url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	ctx, stopChanges := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(3, 4))
		for ctx.Err() == nil {
			id := 1 + rng.IntN(rows)
			// An update cut by a restart may or may not have committed:
			// the check compares with the table as it ends, either way.
			_, _ = pool.Exec(ctx, `UPDATE items SET qty = qty + 1, name = 'changed' WHERE id = $1`, id)
		}
	}()
	defer func() { stopChanges(); wg.Wait() }()

	if b, err := exec.Command(cdcdBin, "backfill", "items-to-archive", "--detach", "-c", config).CombinedOutput(); err != nil {
		t.Fatalf("cdcd backfill: %v\n%s", err, b)
	}
	processed := func() (n int64, status string) {
		_ = pool.QueryRow(context.Background(), `SELECT processed, status FROM cdcd.jobs ORDER BY id DESC LIMIT 1`).Scan(&n, &status)
		return n, status
	}
	for k := range kills {
		var before int64
		cdctest.Eventually(t, 60*time.Second, "the backfill to make progress", func() bool {
			n, status := processed()
			if status == "done" {
				t.Fatalf("the backfill finished before cut %d", k+1)
			}
			before = n
			return n >= int64(k+1)*4*chunk
		})
		cut(t, pg, d)
		t.Logf("cut %d at %d rows processed", k+1, before)
	}
	cdctest.Eventually(t, 120*time.Second, "the backfill to be done", func() bool {
		_, status := processed()
		if status == "failed" {
			var reason string
			_ = pool.QueryRow(context.Background(), `SELECT coalesce(error, '') FROM cdcd.jobs ORDER BY id DESC LIMIT 1`).Scan(&reason)
			t.Fatalf("the backfill failed: %s", reason)
		}
		return status == "done"
	})
	stopChanges()
	wg.Wait()
	waitCaughtUp(t, url, 60*time.Second)

	reads := fileHoldsTable(t, pool, out, rows)
	again := 0
	for _, c := range reads {
		if c > 1 {
			again++
		}
	}
	if again > kills*chunk {
		t.Fatalf("%d rows read more than once, more than the %d chunks of %d rows the cuts cut short", again, kills, chunk)
	}
	t.Logf("%d rows read by the backfill, %d of them twice", len(reads), again)
}

// fileHoldsTable checks that the last event of every key in the file out
// equals the row of items, of which there are rows, and returns how many
// times the backfill read each key.
func fileHoldsTable(t *testing.T, pool *pgxpool.Pool, out string, rows int) map[int]int {
	t.Helper()
	type row struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
		Qty  int    `json:"qty"`
	}
	last := map[int]row{}
	reads := map[int]int{}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e struct {
			Op    string `json:"op"`
			After row    `json:"after"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		last[e.After.ID] = e.After
		if e.Op == "r" {
			reads[e.After.ID]++
		}
	}
	table, err := pool.Query(context.Background(), `SELECT id, name, qty FROM items`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for table.Next() {
		var r row
		if err := table.Scan(&r.ID, &r.Name, &r.Qty); err != nil {
			t.Fatal(err)
		}
		if got, ok := last[r.ID]; !ok || got != r {
			t.Fatalf("row %d: the file holds %+v last (present %v), the table %+v", r.ID, got, ok, r)
		}
		n++
	}
	if n != rows {
		t.Fatalf("%d rows in the table", n)
	}
	return reads
}

func newPool(url string) (*pgxpool.Pool, error) { return pgxpool.New(context.Background(), url) }
