package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/e2e/e2etest"
)

// TestBackfillWithSplitRoles backfills a table through Kafka with the
// roles split: the capture process reads the chunks into its stream, the
// sinks worker delivers them. The backfilled pipeline's file ends with
// every row as the table holds it, though rows changed while the backfill
// ran; the other pipeline of the same table gets the live changes and no
// backfill row.
func TestBackfillWithSplitRoles(t *testing.T) {
	needsServers(t)
	t.Parallel()
	const rows = 3000
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", fmt.Sprintf(`CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL);
		INSERT INTO items (id, name, qty) SELECT g, 'item ' || g, g FROM generate_series(1, %d) g`, rows))
	k := cdctest.StartKafka(t, kfake.NumBrokers(1))
	dir := t.TempDir()
	archive, other := filepath.Join(dir, "archive.jsonl"), filepath.Join(dir, "other.jsonl")
	config := func(role, addr string) string {
		path := filepath.Join(dir, role+".yaml")
		yaml := fmt.Sprintf(`postgres: {url: %q, tables: [items], status_interval: 100ms}
kafka: {brokers: [%q], topic_prefix: split}
http: {listen: %q}
jobs: {lease: 3s, chunk_size: 250}
systems:
  archive: {type: file, path: %q}
  other: {type: file, path: %q}
pipelines:
  - {name: items-to-archive, from: items, to: archive}
  - {name: items-to-other, from: items, to: other}
`, url, strings.Join(k.Brokers(), ","), addr, archive, other)
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	captureAddr, sinksAddr := e2etest.FreeAddr(t), e2etest.FreeAddr(t)
	captureConfig := config("capture", captureAddr)
	capture := e2etest.NewProcess(t, "cdcd --role capture", cdcdBin, "run", "--config", captureConfig, "--role", "capture")
	capture.Start()
	sinks := e2etest.NewProcess(t, "cdcd --role sinks", cdcdBin, "run", "--config", config("sinks", sinksAddr), "--role", "sinks")
	sinks.Start()
	capture.WaitReady(captureAddr, 60*time.Second)
	sinks.WaitReady(sinksAddr, 60*time.Second)

	pool, err := newPool(url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ctx := context.Background()
	if b, err := exec.Command(cdcdBin, "backfill", "items-to-archive", "--detach", "-c", captureConfig).CombinedOutput(); err != nil {
		t.Fatalf("cdcd backfill: %v\n%s", err, b)
	}
	for id := 1; id <= rows; id += 30 {
		if _, err := pool.Exec(ctx, `UPDATE items SET qty = qty + 1, name = 'changed' WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
	}
	cdctest.Eventually(t, 90*time.Second, "the backfill to be done", func() bool {
		var status, reason string
		_ = pool.QueryRow(ctx, `SELECT status, coalesce(error, '') FROM cdcd.jobs ORDER BY id DESC LIMIT 1`).Scan(&status, &reason)
		if status == "failed" {
			t.Fatalf("the backfill failed: %s", reason)
		}
		return status == "done"
	})

	type row struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
		Qty  int    `json:"qty"`
	}
	want := map[int]row{}
	table, err := pool.Query(ctx, `SELECT id, name, qty FROM items`)
	if err != nil {
		t.Fatal(err)
	}
	for table.Next() {
		var r row
		if err := table.Scan(&r.ID, &r.Name, &r.Qty); err != nil {
			t.Fatal(err)
		}
		want[r.ID] = r
	}
	if table.Err() != nil {
		t.Fatal(table.Err())
	}
	// read returns the last event of each key in path and the ops seen.
	read := func(path string) (map[int]row, map[string]int) {
		last, ops := map[int]row{}, map[string]int{}
		f, err := os.Open(path)
		if os.IsNotExist(err) {
			return last, ops
		}
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
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				return last, ops // a line being written
			}
			last[e.After.ID] = e.After
			ops[e.Op]++
		}
		return last, ops
	}
	var diff string
	t.Cleanup(func() {
		if t.Failed() && diff != "" {
			t.Log("last difference: " + diff)
		}
	})
	cdctest.Eventually(t, 60*time.Second, "the archive to hold every row as the table does", func() bool {
		last, _ := read(archive)
		diff = ""
		for id, r := range want {
			if last[id] != r {
				diff = fmt.Sprintf("row %d: archive holds %+v last, the table %+v", id, last[id], r)
				return false
			}
		}
		return true
	})
	// A row updated while its chunk was open is left to the stream, so
	// the backfill reads every row but, at most, the ones updated.
	_, ops := read(archive)
	if updated := (rows + 29) / 30; ops["r"] < rows-updated {
		t.Errorf("archive ops %v, want at least %d backfill reads", ops, rows-updated)
	}
	cdctest.Eventually(t, 30*time.Second, "the other pipeline to get the live updates", func() bool {
		_, ops := read(other)
		return ops["u"] >= rows/30
	})
	if _, ops := read(other); ops["r"] != 0 {
		t.Errorf("the other pipeline got %d backfill rows; ops %v", ops["r"], ops)
	}
	capture.MustRun("after the backfill")
	sinks.MustRun("after the backfill")
}
