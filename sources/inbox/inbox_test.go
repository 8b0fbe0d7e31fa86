package inbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/sources/webhook"
	"github.com/cdcd-dev/cdcd/store"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
)

// One server for the package; each test gets its own database.
var pg cdctest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Destroy()
	os.Exit(code)
}

// newPool returns a pool on a new database with cdcd's schema.
func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	url := pg.DB(t, "inbox")
	st, err := store.Open(t.Context(), url, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func open(t *testing.T, pool *pgxpool.Pool, reg prometheus.Registerer) *Inbox {
	t.Helper()
	return openAs(t, pool, Config{Deployment: "cdcd"}, reg)
}

func openAs(t *testing.T, pool *pgxpool.Pool, cfg Config, reg prometheus.Registerer) *Inbox {
	t.Helper()
	b, err := Open(t.Context(), pool, cfg, zerolog.New(zerolog.NewTestWriter(t)), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// run pumps the inbox into pub until the returned stop is called.
func run(t *testing.T, b *Inbox, pub cdc.Publisher) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, pub) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func change(id, email string) webhook.Change {
	return webhook.Change{Kind: "contact.propertyChange", Event: cdc.Event{
		Op: cdc.OpUpdate, Source: "hubspot", Schema: "hubspot", Table: "contacts",
		Key:        cdc.Row{{Name: "id", Value: []byte(`"` + id + `"`)}},
		After:      cdc.Row{{Name: "email", Value: cdc.AppendJSONString(nil, email)}},
		CommitTime: time.UnixMilli(1763819940123).UTC(), DeliveryID: "d-" + id + "-" + email,
		Partial: true, OriginHint: "CRM_UI",
	}}
}

func count(t *testing.T, pool *pgxpool.Pool, sql string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAcceptThenDeliverInOrder(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	b := open(t, pool, nil)
	ctx := t.Context()
	for i := range 5 {
		if err := b.Accept(ctx, "hubspot", []webhook.Change{change("1", fmt.Sprintf("v%d@example.com", i))}); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM cdcd.inbox`); n != 5 {
		t.Fatalf("inbox holds %d rows after accepting 5", n)
	}
	var c cdctest.Collector
	run(t, b, &c)
	got := c.WaitFor(t, 10*time.Second, "5 events", func(e []cdc.Event) bool { return len(e) == 5 })
	for i, e := range got {
		want := fmt.Sprintf(`"v%d@example.com"`, i)
		if string(e.After[0].Value) != want || e.Source != "hubspot" || e.Schema != "hubspot" || e.Table != "contacts" ||
			string(e.Key[0].Value) != `"1"` || !e.Partial || e.OriginHint != "CRM_UI" || e.DeliveryID == "" ||
			!e.CommitTime.Equal(time.UnixMilli(1763819940123)) {
			t.Fatalf("event %d: %+v, want after.email %s", i, e, want)
		}
	}
	cdctest.Eventually(t, 10*time.Second, "delivered rows deleted", func() bool {
		return count(t, pool, `SELECT count(*) FROM cdcd.inbox`) == 0
	})
	// New changes wake the pump without waiting for the poll.
	if err := b.Accept(ctx, "hubspot", []webhook.Change{change("2", "x@example.com")}); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(t, 500*time.Millisecond, "the sixth event", func(e []cdc.Event) bool { return len(e) == 6 })
}

func TestDuplicatesStoredOnce(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	reg := prometheus.NewRegistry()
	b := open(t, pool, reg)
	ctx := t.Context()
	delivery := []webhook.Change{change("1", "a@example.com"), change("2", "b@example.com")}
	if err := b.Accept(ctx, "hubspot", delivery); err != nil {
		t.Fatal(err)
	}
	// The same delivery again, eight copies at once, plus the same ids from
	// another system, which are not duplicates.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := b.Accept(ctx, "hubspot", delivery); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := b.Accept(ctx, "salesforce", delivery); err != nil {
		t.Fatal(err)
	}
	if n := count(t, pool, `SELECT count(*) FROM cdcd.inbox WHERE system = 'hubspot'`); n != 2 {
		t.Fatalf("hubspot rows = %d, want 2", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM cdcd.inbox WHERE system = 'salesforce'`); n != 2 {
		t.Fatalf("salesforce rows = %d, want 2", n)
	}
	if d := value(t, b.m.duplicates.WithLabelValues("hubspot")); d != 16 {
		t.Fatalf("duplicates metric = %v, want 16", d)
	}
	// Changes without a delivery id are never deduplicated.
	anon := change("3", "c@example.com")
	anon.DeliveryID = ""
	for range 2 {
		if err := b.Accept(ctx, "hubspot", []webhook.Change{anon}); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM cdcd.inbox WHERE system = 'hubspot'`); n != 4 {
		t.Fatalf("hubspot rows = %d, want 4", n)
	}
}

func TestConcurrentAcceptsShareCommits(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	b := open(t, pool, nil)
	ctx := t.Context()
	const workers, each = 32, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if err := b.Accept(ctx, "hubspot", []webhook.Change{change(fmt.Sprint(w), fmt.Sprint(i))}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := count(t, pool, `SELECT count(*) FROM cdcd.inbox`); n != workers*each {
		t.Fatalf("rows = %d, want %d", n, workers*each)
	}
	var m dto.Metric
	if err := b.m.commits.Write(&m); err != nil {
		t.Fatal(err)
	}
	if n := m.GetHistogram().GetSampleCount(); n >= workers*each {
		t.Fatalf("%d accepts took %d commits: no group commit", workers*each, n)
	}
	// Per system and record, order is arrival order.
	var c cdctest.Collector
	run(t, b, &c)
	got := c.WaitFor(t, 10*time.Second, "every event", func(e []cdc.Event) bool { return len(e) == workers*each })
	next := map[string]int{}
	for _, e := range got {
		k := string(e.Key[0].Value)
		if want := fmt.Sprintf(`"%d"`, next[k]); string(e.After[0].Value) != want {
			t.Fatalf("record %s: got %s, want %s", k, e.After[0].Value, want)
		}
		next[k]++
	}
}

func TestUndeliveredChangesSurviveRestart(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	b := open(t, pool, nil)
	ctx := t.Context()
	for i := range 3 {
		if err := b.Accept(ctx, "hubspot", []webhook.Change{change(fmt.Sprint(i), "a@example.com")}); err != nil {
			t.Fatal(err)
		}
	}
	held := &cdctest.Collector{Hold: true}
	stop := run(t, b, held)
	held.WaitFor(t, 10*time.Second, "3 events", func(e []cdc.Event) bool { return len(e) == 3 })
	stop() // a crash before the bus delivered them
	b.Close()

	b2 := open(t, pool, nil)
	if p := value(t, b2.m.pending); p != 3 {
		t.Fatalf("pending after restart = %v, want 3", p)
	}
	var c cdctest.Collector
	run(t, b2, &c)
	got := c.WaitFor(t, 10*time.Second, "3 events again", func(e []cdc.Event) bool { return len(e) == 3 })
	for i, e := range got {
		if string(e.Key[0].Value) != fmt.Sprintf(`"%d"`, i) {
			t.Fatalf("event %d has key %s", i, e.Key[0].Value)
		}
	}
	cdctest.Eventually(t, 10*time.Second, "inbox empty", func() bool {
		return count(t, pool, `SELECT count(*) FROM cdcd.inbox`) == 0
	})
}

func TestNackReadsAgainFromOldest(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	b := open(t, pool, nil)
	ctx := t.Context()
	for i := range 4 {
		if err := b.Accept(ctx, "hubspot", []webhook.Change{change(fmt.Sprint(i), "a@example.com")}); err != nil {
			t.Fatal(err)
		}
	}
	c := &cdctest.Collector{Hold: true}
	run(t, b, c)
	c.WaitFor(t, 10*time.Second, "4 events", func(e []cdc.Event) bool { return len(e) == 4 })
	c.Hold = false // the collector reads Hold under its lock only in Publish; no publish is pending here
	c.Release(errors.New("sink closed"))
	got := c.WaitFor(t, 10*time.Second, "4 events again", func(e []cdc.Event) bool { return len(e) == 8 })
	for i, e := range got[4:] {
		if string(e.Key[0].Value) != fmt.Sprintf(`"%d"`, i) {
			t.Fatalf("replayed event %d has key %s", i, e.Key[0].Value)
		}
	}
	cdctest.Eventually(t, 10*time.Second, "inbox empty", func() bool {
		return count(t, pool, `SELECT count(*) FROM cdcd.inbox`) == 0
	})
}

func TestAcceptAfterClose(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	b := open(t, pool, nil)
	b.Close()
	if err := b.Accept(t.Context(), "hubspot", []webhook.Change{change("1", "a")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}

func TestPruneDeliveries(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	b := open(t, pool, nil)
	ctx := t.Context()
	if err := b.Accept(ctx, "hubspot", []webhook.Change{change("1", "a"), change("2", "b")}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE cdcd.webhook_deliveries SET accepted_at = now() - interval '8 days' WHERE delivery_id = 'd-1-a'`); err != nil {
		t.Fatal(err)
	}
	n, err := webhook.PruneDeliveries(ctx, pool, "cdcd", 7*24*time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want 1", n, err)
	}
	if got := count(t, pool, `SELECT count(*) FROM cdcd.webhook_deliveries`); got != 1 {
		t.Fatalf("deliveries left = %d, want 1", got)
	}
}

// value reads a counter or gauge.
func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.GetGauge().GetValue()
}
