package outbound

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

// TestKilledExportFinishes: contacts that predate cdcd are exported to
// HubSpot; cdcd is killed with SIGKILL mid-export and started again. The
// job is taken up from its cursor and finishes: HubSpot then holds every
// contact as the table does, each created once.
func TestKilledExportFinishes(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, false, hubspot.Options{})
	w := newWorkload(t, d.url)
	w.insert(1, 5000, "lead") // before the slot: only an export sends them
	p := d.start("all")
	d.cli("export", pipelineName, "--detach")

	conn, err := pgx.Connect(context.Background(), d.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	job := func() (processed int64, status string) {
		if err := conn.QueryRow(context.Background(), `SELECT processed, status FROM cdcd.jobs ORDER BY id DESC LIMIT 1`).Scan(&processed, &status); err != nil {
			t.Fatal(err)
		}
		return processed, status
	}
	cdctest.Eventually(t, 60*time.Second, "the export to make progress", func() bool {
		n, status := job()
		if status == "done" {
			t.Fatal("the export finished before the kill")
		}
		return n >= 600
	})
	p.kill()
	p.restart()
	cdctest.Eventually(t, 120*time.Second, "the export to be done", func() bool {
		_, status := job()
		if status == "failed" {
			t.Fatal("the export failed")
		}
		return status == "done"
	})
	waitConverged(t, d.url, nil, d.hub, 60*time.Second)
	checkCreatedOnce(t, d.hub, w.ids)
}
