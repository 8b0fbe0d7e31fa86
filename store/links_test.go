package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncstate"
)

func link(key, ext string) syncstate.Link {
	return syncstate.Link{System: "hubspot", Object: "contacts", Table: "public.contacts", Key: key, ExternalID: ext}
}

func ref(key string) syncstate.LinkRef {
	return syncstate.LinkRef{System: "hubspot", Object: "contacts", Table: "public.contacts", Key: key}
}

func TestLinksRoundTrip(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	links := s.Links()

	a := link(`{"id":1}`, "901")
	a.Base = map[string]any{"email": "a@example.com", "score": json.Number("9007199254740993"), "tags": []any{"x"}}
	a.Version = "2024-05-01T10:00:00Z"
	a.LSN = 0x16B3748
	b := link(`{"id":2}`, "902") // no base, version or LSN
	other := a
	other.System, other.ExternalID = "salesforce", "003XX"
	before := time.Now().Add(-time.Second)
	if err := links.Put(ctx, []syncstate.Link{a, b, other}); err != nil {
		t.Fatal(err)
	}

	got, err := links.Get(ctx, []syncstate.LinkRef{ref(`{"id":1}`), ref(`{"id":2}`), ref(`{"id":3}`),
		{System: "salesforce", Object: "contacts", Table: "public.contacts", Key: `{"id":1}`}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d links, want 3 (the missing ref has none): %v", len(got), got)
	}
	ga := got[ref(`{"id":1}`)]
	if ga.ExternalID != "901" || ga.Version != a.Version || ga.LSN != a.LSN || ga.UpdatedAt.Before(before) {
		t.Fatalf("link a = %+v", ga)
	}
	// Numbers stay exact: 2^53+1 would round as a float64.
	if n, ok := ga.Base["score"].(json.Number); !ok || n.String() != "9007199254740993" || ga.Base["email"] != "a@example.com" {
		t.Fatalf("base = %#v", ga.Base)
	}
	if gb := got[ref(`{"id":2}`)]; gb.ExternalID != "902" || gb.Version != "" || gb.LSN != 0 || len(gb.Base) != 0 {
		t.Fatalf("link b = %+v", gb)
	}
	if gs := got[syncstate.LinkRef{System: "salesforce", Object: "contacts", Table: "public.contacts", Key: `{"id":1}`}]; gs.ExternalID != "003XX" {
		t.Fatalf("salesforce link = %+v", gs)
	}

	// An update replaces everything but the ref.
	a2 := link(`{"id":1}`, "901")
	a2.Base = map[string]any{"email": "new@example.com"}
	a2.LSN = 0x16B3800
	if err := links.Put(ctx, []syncstate.Link{a2}); err != nil {
		t.Fatal(err)
	}
	got, err = links.Get(ctx, []syncstate.LinkRef{ref(`{"id":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if g := got[ref(`{"id":1}`)]; g.Base["email"] != "new@example.com" || g.Version != "" || g.LSN != a2.LSN || !g.UpdatedAt.After(ga.UpdatedAt) {
		t.Fatalf("updated link = %+v, was %+v", g, ga)
	}
}

func TestLinksGetManyInOneQuery(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	var put []syncstate.Link
	var refs []syncstate.LinkRef
	for i := range 2000 {
		key := fmt.Sprintf(`{"id":%d}`, i)
		if i%2 == 0 {
			put = append(put, link(key, fmt.Sprint(100000+i)))
		}
		refs = append(refs, ref(key))
	}
	if err := s.Links().Put(ctx, put); err != nil {
		t.Fatal(err)
	}
	got, err := s.Links().Get(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1000 || got[ref(`{"id":1998}`)].ExternalID != "101998" || got[ref(`{"id":1}`)] != nil {
		t.Fatalf("got %d links", len(got))
	}
}

// A second local record claiming an external id that another record holds
// is refused, naming both, and nothing of the batch is written.
func TestLinksExternalIDBelongsToOneLocalRecord(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	links := s.Links()
	if err := links.Put(ctx, []syncstate.Link{link(`{"id":1}`, "901")}); err != nil {
		t.Fatal(err)
	}

	err := links.Put(ctx, []syncstate.Link{link(`{"id":3}`, "903"), link(`{"id":2}`, "901")})
	var ce *LinkConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("put: %v, want a *LinkConflictError", err)
	}
	if ce.ExternalID != "901" || ce.HolderKey != `{"id":1}` || ce.ClaimantKey != `{"id":2}` {
		t.Fatalf("conflict = %+v", ce)
	}
	want := `link hubspot contacts "901": already linked to public.contacts {"id":1}, claimed by public.contacts {"id":2}`
	if err.Error() != want {
		t.Fatalf("error %q\nwant   %q", err, want)
	}
	got, _ := links.Get(ctx, []syncstate.LinkRef{ref(`{"id":1}`), ref(`{"id":2}`), ref(`{"id":3}`)})
	if len(got) != 1 || got[ref(`{"id":1}`)].ExternalID != "901" {
		t.Fatalf("after the refused put: %v", got)
	}

	// Two records of one batch claiming one id.
	err = links.Put(ctx, []syncstate.Link{link(`{"id":4}`, "904"), link(`{"id":5}`, "904")})
	if !errors.As(err, &ce) || ce.HolderKey != `{"id":4}` || ce.ClaimantKey != `{"id":5}` {
		t.Fatalf("put of a batch claiming one id twice: %v", err)
	}

	// The same external id in another object or system is another record.
	other := link(`{"id":2}`, "901")
	other.Object = "companies"
	if err := links.Put(ctx, []syncstate.Link{other}); err != nil {
		t.Fatalf("same id in another object: %v", err)
	}

	// An id may move between local records when the holder gives it up in
	// the same batch (merged records).
	if err := links.Put(ctx, []syncstate.Link{link(`{"id":2}`, "901"), link(`{"id":1}`, "911")}); err != nil {
		t.Fatalf("move external id: %v", err)
	}
	got, _ = links.Get(ctx, []syncstate.LinkRef{ref(`{"id":1}`), ref(`{"id":2}`)})
	if got[ref(`{"id":1}`)].ExternalID != "911" || got[ref(`{"id":2}`)].ExternalID != "901" {
		t.Fatalf("after the move: 1→%s 2→%s", got[ref(`{"id":1}`)].ExternalID, got[ref(`{"id":2}`)].ExternalID)
	}
}

func TestLinksPutKeepsTheLastOfARef(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	l1, l2 := link(`{"id":1}`, "901"), link(`{"id":1}`, "902")
	l2.LSN = cdc.LSN(42)
	if err := s.Links().Put(ctx, []syncstate.Link{l1, l2}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Links().Get(ctx, []syncstate.LinkRef{ref(`{"id":1}`)})
	if g := got[ref(`{"id":1}`)]; g == nil || g.ExternalID != "902" || g.LSN != 42 {
		t.Fatalf("link = %+v", g)
	}
	if err := s.Links().Put(ctx, []syncstate.Link{link(`{"id":9}`, "")}); err == nil {
		t.Fatal("put of a link without an external id succeeded")
	}
}

// A link's position orders re-sent changes only in the cluster that wrote
// it: one past the server's WAL (the database was restored into a new
// cluster, whose positions start lower) reads as none, so no change is
// skipped as older than it.
func TestLinkPositionFromAnotherClusterReadsAsNone(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	a, b := link(`{"id":1}`, "901"), link(`{"id":2}`, "902")
	a.LSN, b.LSN = 0x1000, 0xFFFFFFFF00000000
	if err := s.Links().Put(ctx, []syncstate.Link{a, b}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Links().Get(ctx, []syncstate.LinkRef{ref(`{"id":1}`), ref(`{"id":2}`)})
	if err != nil {
		t.Fatal(err)
	}
	if l := got[ref(`{"id":1}`)]; l.LSN != 0x1000 {
		t.Errorf("a position of this cluster reads %v", l.LSN)
	}
	if l := got[ref(`{"id":2}`)]; l.LSN != 0 {
		t.Errorf("a position past the server's WAL reads %v, want none", l.LSN)
	}
}

// Two Puts of the same links in opposite orders, again and again at once,
// wait for each other: rows are locked in key order, never in the order a
// batch came in, so Postgres finds no deadlock.
func TestConcurrentPutsOfOverlappingLinksNeverDeadlock(t *testing.T) {
	s, url := openStore(t)
	ctx := context.Background()
	var batch []syncstate.Link
	for i := range 50 {
		batch = append(batch, link(fmt.Sprintf(`{"id":%d}`, i), fmt.Sprint(900+i)))
	}
	reversed := slices.Clone(batch)
	slices.Reverse(reversed)
	before := deadlocks(t, url)
	errs := make(chan error, 2)
	for _, b := range [][]syncstate.Link{batch, reversed} {
		go func() {
			for range 40 {
				if err := s.Links().Put(ctx, b); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := deadlocks(t, url) - before; n != 0 {
		t.Fatalf("%d deadlocks", n)
	}
}

// The links of a Write are updated at each sync: an update of a live link
// changes no indexed column and finds room on its page, so Postgres adds
// no index entries for it (a HOT update, migration 0166). Before, the
// index of deleted links by updated_at made every update write an entry
// in each index.
func TestLiveLinkUpdatesAddNoIndexEntries(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	ctx := context.Background()
	put := func(round int) []syncstate.Link {
		ls := make([]syncstate.Link, 100)
		for i := range ls {
			ls[i] = link(fmt.Sprintf(`{"id":%d}`, i), fmt.Sprint(900+i))
			ls[i].Base = map[string]any{"email": fmt.Sprintf("a%d@example.com", i), "round": json.Number(fmt.Sprint(round))}
			ls[i].LSN = cdc.LSN(0x16B3748 + round)
		}
		return ls
	}
	if err := s.Links().Put(ctx, put(1)); err != nil {
		t.Fatal(err)
	}
	var updated, hot int64
	err := s.InTx(ctx, func(ctx context.Context) error {
		if err := s.Links().Put(ctx, put(2)); err != nil {
			return err
		}
		return on(ctx, s.pool).QueryRow(ctx, `SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables
			WHERE schemaname = 'cdcd' AND relname = 'links'`).Scan(&updated, &hot)
	})
	if err != nil {
		t.Fatal(err)
	}
	if updated != 100 || hot != updated {
		t.Fatalf("%d of %d link updates were HOT, want all 100", hot, updated)
	}
	got, err := s.Links().Get(ctx, []syncstate.LinkRef{ref(`{"id":7}`)})
	if err != nil || got[ref(`{"id":7}`)].Base["round"] != json.Number("2") {
		t.Fatalf("link after the update: %v, %v", got, err)
	}
}

// Put sends its arrays in Postgres's text form: values that form quotes,
// escapes or reads as NULL come back as they were.
func TestLinksPutQuotesEveryValue(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	links := s.Links()
	odd := []string{``, `NULL`, `"`, `\`, `\"`, `a,b`, `{x}`, ` spaced `, "tab\tnew\nline", `{"id":"q\"uote"}`, "ünï ☃"}
	var put []syncstate.Link
	var refs []syncstate.LinkRef
	for i, v := range odd {
		l := link(fmt.Sprintf(`{"k":%q}`, v)+v, "ext-"+v+fmt.Sprint(i))
		l.Object = "obj" + v
		l.Version = v
		l.Base = map[string]any{"v" + v: v}
		l.LSN = cdc.LSN(i + 1)
		put = append(put, l)
		refs = append(refs, syncstate.LinkRef{System: l.System, Object: l.Object, Table: l.Table, Key: l.Key})
	}
	gone := link(`{"id":"deleted"}`, `del"\`)
	gone.Deleted = true
	put = append(put, gone)
	refs = append(refs, ref(gone.Key))
	if err := links.Put(ctx, put); err != nil {
		t.Fatal(err)
	}
	got, err := links.Get(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range put {
		g := got[refs[i]]
		if g == nil {
			t.Errorf("link %d (%q): missing", i, want.Key)
			continue
		}
		if g.ExternalID != want.ExternalID || g.Version != want.Version || g.LSN != want.LSN || g.Deleted != want.Deleted {
			t.Errorf("link %d: got %+v, want %+v", i, *g, want)
		}
		if !want.Deleted && (len(g.Base) != 1 || g.Base["v"+odd[i]] != odd[i]) {
			t.Errorf("link %d: base %#v", i, g.Base)
		}
	}
}

// A link's BaseJSON, when set, is stored as its base: the writer's own
// encoding of the fields, not encoded again.
func TestLinksPutStoresBaseJSON(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	l := link(`{"id":1}`, "901")
	l.Base = map[string]any{"email": "a@example.com"}
	l.BaseJSON = []byte(`{"email": "a@example.com", "n": 1}`) // what the writer sent
	gone := link(`{"id":2}`, "902")
	gone.Deleted, gone.BaseJSON = true, []byte(`{"x":1}`)
	if err := s.Links().Put(ctx, []syncstate.Link{l, gone}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Links().Get(ctx, []syncstate.LinkRef{ref(`{"id":1}`), ref(`{"id":2}`)})
	if err != nil {
		t.Fatal(err)
	}
	if b := got[ref(`{"id":1}`)].Base; len(b) != 2 || b["n"] != json.Number("1") {
		t.Fatalf("base %#v, want the BaseJSON's", b)
	}
	if g := got[ref(`{"id":2}`)]; !g.Deleted || len(g.Base) != 0 {
		t.Fatalf("deleted link %+v keeps a base", g)
	}
}
