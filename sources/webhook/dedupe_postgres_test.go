package webhook

import (
	"context"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestHandlerDedupePostgres(t *testing.T) {
	t.Parallel()
	pg := cdctest.StartPostgres(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, pg.CreateDB(t, "dedupe"))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	d, err := NewPostgresDeduper(ctx, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	testDuplicateDelivery(t, d)

	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM cdcd.webhook_deliveries WHERE system = 'hubspot'`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 8 {
		t.Errorf("cdcd.webhook_deliveries holds %d rows, want 8", rows)
	}

	// A restarted process has an empty cache and an existing table.
	again, err := NewPostgresDeduper(ctx, pool, NewMemoryDeduper(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{
		"33/25/3816279399/1763819950000/777": true,
		"33/25/3816279399/1763819950000/778": false,
	} {
		if seen, err := again.Seen(ctx, "hubspot", id); err != nil || seen != want {
			t.Errorf("after restart Seen(%q) = %v, %v; want %v", id, seen, err, want)
		}
	}
	if seen, _ := again.Seen(ctx, "shopify", "33/25/3816279399/1763819950000/777"); seen {
		t.Error("an id marked for hubspot is seen for shopify")
	}
	if err := again.Mark(ctx, "hubspot", []string{"33/25/3816279399/1763819950000/777", "n1", "n2"}); err != nil {
		t.Fatalf("Mark with a conflicting id: %v", err)
	}
}
