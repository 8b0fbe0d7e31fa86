package transform

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
)

func order(id, customer string) *cdc.Event {
	return &cdc.Event{Op: cdc.OpCreate, Schema: "public", Table: "orders", Key: row("id", id),
		After: row("id", id, "customer_id", customer, "total", `"99.90"`)}
}

func customerLookup(size int, ttl time.Duration) []*config.Lookup {
	return []*config.Lookup{{Name: "customer", Table: "public.customers",
		Key: map[string]string{"id": "after.customer_id"}, Columns: []string{"email", "name"},
		Cache: config.Cache{Size: size, TTL: ttl}}}
}

func TestLookupCache(t *testing.T) {
	t.Parallel()
	src := &countingSource{rows: map[string]map[string]any{
		`public.customers{"id":1}`: {"email": "a@x", "name": "Ann", "credit": json.Number("10")},
	}}
	m := mustNew(t, Spec{
		Lookups: customerLookup(100, time.Hour),
		Map: map[string]config.Source{
			"email": ex("lookup.customer.email"),
			"who":   ex(`coalesce(lookup.customer?.name, "unknown")`),
			"found": ex("lookup.customer != nil"),
		},
	}, src)
	ctx := context.Background()
	check := func(ev *cdc.Event, want string, calls int) {
		t.Helper()
		rec, ok, err := m.Map(ctx, ev)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		got, _ := json.Marshal(rec.Fields)
		if string(got) != want {
			t.Errorf("fields %s, want %s", got, want)
		}
		if src.count() != calls {
			t.Errorf("%d lookups reached the source, want %d", src.count(), calls)
		}
	}
	check(order("1", "1"), `{"email":"a@x","found":true,"who":"Ann"}`, 1)
	check(order("2", "1"), `{"email":"a@x","found":true,"who":"Ann"}`, 1) // cached
	check(order("3", "2"), `{"email":null,"found":false,"who":"unknown"}`, 2)
	check(order("4", "2"), `{"email":null,"found":false,"who":"unknown"}`, 3)    // misses are not cached
	check(order("5", "null"), `{"email":null,"found":false,"who":"unknown"}`, 3) // a nil key queries nothing
}

func TestLookupCacheDisabled(t *testing.T) {
	t.Parallel()
	src := &countingSource{rows: map[string]map[string]any{`public.customers{"id":1}`: {"email": "a@x"}}}
	m := mustNew(t, Spec{Lookups: customerLookup(0, 0)}, src)
	for range 3 {
		if _, _, err := m.Map(context.Background(), order("1", "1")); err != nil {
			t.Fatal(err)
		}
	}
	if src.count() != 3 {
		t.Errorf("%d lookups, want 3 without a cache", src.count())
	}
}

func TestFilterBeforeLookup(t *testing.T) {
	t.Parallel()
	src := &countingSource{rows: map[string]map[string]any{`public.customers{"id":1}`: {"email": "a@x"}}}
	ctx := context.Background()
	m := mustNew(t, Spec{Lookups: customerLookup(0, 0), Filter: "after.customer_id > 5"}, src)
	if _, ok, err := m.Map(ctx, order("1", "1")); ok || err != nil {
		t.Fatal(ok, err)
	}
	if src.count() != 0 {
		t.Errorf("a filter without lookups ran after %d lookups", src.count())
	}
	m = mustNew(t, Spec{Lookups: customerLookup(0, 0), Filter: `lookup.customer.email == "a@x"`}, src)
	if _, ok, err := m.Map(ctx, order("1", "1")); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, ok, err := m.Map(ctx, order("2", "2")); ok || err != nil {
		t.Fatal(ok, err)
	}
}

type failingSource struct{}

func (failingSource) Lookup(context.Context, string, map[string]any, []string) (map[string]any, error) {
	return nil, context.DeadlineExceeded
}

func TestLookupErrorsAreTransient(t *testing.T) {
	t.Parallel()
	_, _, err := mustNew(t, Spec{Lookups: customerLookup(10, 0)}, failingSource{}).Map(context.Background(), order("1", "1"))
	if err == nil || cdc.IsPermanent(err) || err.Error() != "lookup customer in public.customers: context deadline exceeded" {
		t.Errorf("got %v", err)
	}
}

func TestConcurrentMap(t *testing.T) {
	t.Parallel()
	src := &countingSource{rows: map[string]map[string]any{`public.customers{"id":1}`: {"email": "a@x"}}}
	m := mustNew(t, Spec{Lookups: customerLookup(10, time.Minute), Filter: "after.customer_id == 1",
		Map: map[string]config.Source{"email": ex("lookup.customer.email"), "id": col("id")}}, src)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				rec, ok, err := m.Map(context.Background(), order(strconv.Itoa(g*1000+i), "1"))
				if err != nil || !ok || rec.Fields["email"] != "a@x" || rec.Fields["id"] != json.Number(strconv.Itoa(g*1000+i)) {
					t.Errorf("goroutine %d event %d: %v %v %v", g, i, rec.Fields, ok, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
