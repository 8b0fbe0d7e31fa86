package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/syncstate"
)

// What the links, recent writes, audit and pending creates store within
// InTx commits together, or not at all.
func TestInTxCommitsAllOrNothing(t *testing.T) {
	s, url := openStore(t)
	ctx := context.Background()
	l := link(`{"id":1}`, "901")
	l.Base = map[string]any{"email": "a@example.com"}
	pending := []syncstate.LinkRef{ref(`{"id":1}`)}
	if err := s.PendingCreates().Begin(ctx, pending); err != nil {
		t.Fatal(err)
	}
	count := func() [4]int64 {
		return [4]int64{
			queryInt(t, url, "SELECT count(*) FROM cdcd.links"),
			queryInt(t, url, "SELECT count(*) FROM cdcd.recent_writes"),
			queryInt(t, url, "SELECT count(*) FROM cdcd.sync_events"),
			queryInt(t, url, "SELECT count(*) FROM cdcd.pending_creates"),
		}
	}
	store := func(ctx context.Context) error {
		if err := s.Links().Put(ctx, []syncstate.Link{l}); err != nil {
			return err
		}
		if err := s.RecentWrites().Remember(ctx, []syncstate.Link{l}); err != nil {
			return err
		}
		if err := s.Audit().Record(ctx, outcomes(3, time.Now())); err != nil {
			return err
		}
		if err := s.PendingCreates().Settle(ctx, pending); err != nil {
			return err
		}
		if got := count(); got != [4]int64{0, 0, 0, 1} {
			t.Errorf("seen by another connection before the commit: %v", got)
		}
		return nil
	}

	boom := errors.New("boom")
	err := s.InTx(ctx, func(ctx context.Context) error {
		if err := store(ctx); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v, want fn's error", err)
	}
	if got := count(); got != [4]int64{0, 0, 0, 1} {
		t.Fatalf("after a failed InTx (links, recent writes, audit, pending): %v", got)
	}

	if err := s.InTx(ctx, store); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != [4]int64{1, 1, 3, 0} {
		t.Fatalf("after InTx (links, recent writes, audit, pending): %v", got)
	}
}

// A link refused within InTx is explained, and the transaction commits
// nothing.
func TestInTxLinkConflict(t *testing.T) {
	s, url := openStore(t)
	ctx := context.Background()
	if err := s.Links().Put(ctx, []syncstate.Link{link(`{"id":1}`, "901")}); err != nil {
		t.Fatal(err)
	}
	err := s.InTx(ctx, func(ctx context.Context) error {
		if err := s.Audit().Record(ctx, outcomes(1, time.Now())); err != nil {
			return err
		}
		return s.Links().Put(ctx, []syncstate.Link{link(`{"id":2}`, "901")})
	})
	var ce *LinkConflictError
	if !errors.As(err, &ce) || ce.HolderKey != `{"id":1}` || ce.ClaimantKey != `{"id":2}` {
		t.Fatalf("InTx = %v, want the conflict", err)
	}
	if n := queryInt(t, url, "SELECT count(*) FROM cdcd.sync_events"); n != 0 {
		t.Fatalf("%d audit events stored by the refused transaction", n)
	}
}

// Regression: a link refused within InTx was explained on a second
// connection of the pool while InTx's transaction held the first; with
// every connection held by a settling group (4 pipelines on a 2-core
// host's pool) each waited for another forever. It is now explained in
// InTx's transaction, rolled back to before the refused statement.
func TestInTxLinkConflictOnOneConnection(t *testing.T) {
	url := newDB(t)
	s, ctx := oneConnection(t, url)
	if err := s.Links().Put(ctx, []syncstate.Link{link(`{"id":1}`, "901")}); err != nil {
		t.Fatal(err)
	}
	err := s.InTx(ctx, func(ctx context.Context) error {
		if err := s.Audit().Record(ctx, outcomes(1, time.Now())); err != nil {
			return err
		}
		return s.Links().Put(ctx, []syncstate.Link{link(`{"id":3}`, "903"), link(`{"id":2}`, "901")})
	})
	var ce *LinkConflictError
	if !errors.As(err, &ce) || ce.HolderKey != `{"id":1}` || ce.ClaimantKey != `{"id":2}` {
		t.Fatalf("InTx = %v, want the conflict", err)
	}
	if n := queryInt(t, url, "SELECT count(*) FROM cdcd.sync_events"); n != 0 {
		t.Fatalf("%d audit events stored by the refused transaction", n)
	}
	if n := queryInt(t, url, "SELECT count(*) FROM cdcd.links"); n != 1 {
		t.Fatalf("%d links after the refused transaction, want the holder's", n)
	}
}

// oneConnection opens a store of url whose pool holds one connection,
// and a context that ends the test after 30s instead of waiting forever
// for a second connection.
func oneConnection(t *testing.T, url string) (*Store, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	s, err := Open(ctx, url+"&pool_max_conns=1", zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, ctx
}
