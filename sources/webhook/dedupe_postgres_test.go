package webhook

import (
	"context"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/store"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
)

func TestHandlerDedupePostgres(t *testing.T) {
	t.Parallel()
	pg := cdctest.StartPostgres(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	url := pg.CreateDB(t, "dedupe")
	st, err := store.Open(ctx, url, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	d, err := NewPostgresDeduper(pool, "cdcd", nil)
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
	again, err := NewPostgresDeduper(pool, "cdcd", NewMemoryDeduper(0, 0))
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
	// Another deployment on the database has ids of its own.
	other, err := NewPostgresDeduper(pool, "billing", nil)
	if err != nil {
		t.Fatal(err)
	}
	if seen, err := other.Seen(ctx, "hubspot", "33/25/3816279399/1763819950000/777"); err != nil || seen {
		t.Errorf("another deployment's Seen = %v, %v; want false", seen, err)
	}
	if n, err := PruneDeliveries(ctx, pool, "billing", -time.Hour); err != nil || n != 0 {
		t.Errorf("another deployment pruned %d ids, %v; want none of this one's", n, err)
	}
}
