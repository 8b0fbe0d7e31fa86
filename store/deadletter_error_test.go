package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/syncstate"
	"github.com/rs/zerolog"
)

// hugeError is an error's text as a vendor answering with a 5 MB body
// makes it.
var hugeError = "422 Unprocessable Entity: " + strings.Repeat("<p>invalid é</p>", 5<<20/17)

// cutWell says whether text is hugeError as a dead letter keeps it: its
// head, within syncstate.MaxErrorBytes, saying it was cut and how long it
// was.
func cutWell(text string) bool {
	return len(text) <= syncstate.MaxErrorBytes && strings.HasPrefix(text, hugeError[:100]) &&
		strings.HasSuffix(text, " … [cut: "+strconv.Itoa(len(hugeError))+" bytes in all]")
}

// Regression test: a dead letter kept its error's text however long (a
// vendor answering with a 5 MB body), which weighed on the store, every
// listing of the letters and their Kafka topic; so did a replay's error.
// Both are kept cut to syncstate.MaxErrorBytes, saying so.
func TestDeadLetterKeepsAHugeErrorCut(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	dl := s.DeadLetters()
	l := letter("p", `{"id":1}`)
	l.Error = hugeError
	if err := dl.Put(ctx, []syncstate.DeadLetter{l}); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListDeadLetters(ctx, DeadLetterFilter{Pipeline: "p"})
	if err != nil || len(list) != 1 {
		t.Fatalf("%d letters (%v), want 1", len(list), err)
	}
	if got := list[0].Error; !cutWell(got) {
		t.Fatalf("stored error of %d bytes ending %q", len(got), got[max(0, len(got)-60):])
	}
	if _, err := s.RequestReplay(ctx, []int64{list[0].ID}); err != nil {
		t.Fatal(err)
	}
	if r, err := dl.Replays(ctx, "p", 1); err != nil || len(r) != 1 {
		t.Fatalf("replays %d, %v", len(r), err)
	}
	if err := dl.Resolve(ctx, list[0].ID, errors.New(hugeError)); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetDeadLetter(ctx, list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !cutWell(got.LastError) {
		t.Fatalf("stored replay error of %d bytes ending %q", len(got.LastError), got.LastError[max(0, len(got.LastError)-60):])
	}
}

// Letters stored before the cut (migration 0180) are cut as new ones are;
// a short error stays whole.
func TestMigrationCutsHugeDeadLetterErrors(t *testing.T) {
	url := newDB(t)
	applyUpTo(t, url, 179)
	execSQL(t, url, `INSERT INTO cdcd.dead_letters (pipeline, system, object, local_table, local_key, event_id, op, error, last_error, attempts, failed_at)
		VALUES ('p', 'crm', 'contacts', 'public.contacts', '1', 'e1', 'u', $1, $1, 1, now()),
		       ('p', 'crm', 'contacts', 'public.contacts', '2', 'e2', 'u', 'short', NULL, 1, now())`, hugeError)
	s, err := Open(context.Background(), url, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	list, err := s.ListDeadLetters(context.Background(), DeadLetterFilter{Pipeline: "p"})
	if err != nil || len(list) != 2 {
		t.Fatalf("%d letters (%v), want 2", len(list), err)
	}
	for _, l := range list {
		switch l.Key {
		case "1":
			if !cutWell(l.Error) || !cutWell(l.LastError) {
				t.Errorf("letter 1: error of %d bytes, last error of %d", len(l.Error), len(l.LastError))
			}
		case "2":
			if l.Error != "short" || l.LastError != "" {
				t.Errorf("letter 2: error %q, last error %q", l.Error, l.LastError)
			}
		}
	}
}
