package store

import (
	"context"
	"testing"

	"github.com/cdcd-dev/cdcd/syncstate"
	"github.com/rs/zerolog"
)

// A change re-sent after a restart or a rebalance that fails again is the
// same dead letter: its attempts grow, no second letter appears. Once the
// letter is resolved, a new failure of the same change is a new letter.
func TestResentChangeFailingAgainIsOneDeadLetter(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	dl := s.DeadLetters()
	l := letter("p", `{"id":1}`)
	other := letter("p", `{"id":2}`)
	// the first failure; then a re-send in a batch that holds it twice
	if err := dl.Put(ctx, []syncstate.DeadLetter{l, other}); err != nil {
		t.Fatal(err)
	}
	if err := dl.Put(ctx, []syncstate.DeadLetter{l, l}); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListDeadLetters(ctx, DeadLetterFilter{Pipeline: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("%d dead letters after three failures of one change and one of another, want 2", len(list))
	}
	got, err := s.GetDeadLetter(ctx, list[1].ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Key != `{"id":1}` || got.Attempts != 3 {
		t.Fatalf("letter %s with %d attempts, want {\"id\":1} with 3", got.Key, got.Attempts)
	}

	// the same change failing again while its letter waits for a replay
	// or is being replayed is still that letter
	if _, err := s.RequestReplayAll(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if err := dl.Put(ctx, []syncstate.DeadLetter{l}); err != nil {
		t.Fatal(err)
	}
	if list, _ = s.ListDeadLetters(ctx, DeadLetterFilter{Pipeline: "p"}); len(list) != 2 {
		t.Fatalf("%d dead letters after a failure while waiting for replay, want 2", len(list))
	}

	// once discarded, a new failure is a new letter
	if n, err := s.Discard(ctx, []int64{got.ID}); err != nil || n != 1 {
		t.Fatalf("discard: %d, %v", n, err)
	}
	if err := dl.Put(ctx, []syncstate.DeadLetter{l}); err != nil {
		t.Fatal(err)
	}
	if list, _ = s.ListDeadLetters(ctx, DeadLetterFilter{Pipeline: "p"}); len(list) != 3 {
		t.Fatalf("%d dead letters after a failure of a discarded change, want 3", len(list))
	}
}

// The open duplicates an older cdcd stored, one per re-send, become one
// letter holding their attempts; the others are discarded, naming it.
func TestOpenMergesTheDuplicateDeadLettersAnOlderCdcdStored(t *testing.T) {
	url := newDB(t)
	applyUpTo(t, url, 49)
	for range 3 {
		execSQL(t, url, `INSERT INTO cdcd.dead_letters (pipeline, system, object, local_table, local_key, event_id, op, error, attempts)
			VALUES ('p', 'crm', 'contacts', 'public.contacts', '{"id":1}', 'e1', 'u', 'refused', 2)`)
	}
	execSQL(t, url, `INSERT INTO cdcd.dead_letters (pipeline, system, object, local_table, local_key, event_id, op, error, attempts, status, status_at, resolved_at)
		VALUES ('p', 'crm', 'contacts', 'public.contacts', '{"id":1}', 'e1', 'u', 'refused', 1, 'replayed', now(), now())`)
	s, err := Open(context.Background(), url, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	open, err := s.ListDeadLetters(context.Background(), DeadLetterFilter{Pipeline: "p", Status: StatusDead})
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].Attempts != 6 {
		t.Fatalf("open letters %+v, want one with the 6 attempts of the three", open)
	}
	discarded, _ := s.ListDeadLetters(context.Background(), DeadLetterFilter{Pipeline: "p", Status: StatusDiscarded})
	if len(discarded) != 2 {
		t.Fatalf("%d discarded, want the 2 duplicates", len(discarded))
	}
}
