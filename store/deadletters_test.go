package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncstate"
)

func letter(pipeline, key string) syncstate.DeadLetter {
	return syncstate.DeadLetter{
		Pipeline: pipeline, System: "hubspot", Object: "contacts", Table: "public.contacts", Key: key,
		EventID: "0/16B3748/" + key, Op: cdc.OpUpdate,
		Record:   json.RawMessage(`{"email":"not-an-email"}`),
		Event:    json.RawMessage(`{"op":"u","after":{"id":1}}`),
		Error:    `400 Bad Request: {"message":"Property values were not valid"}`,
		Attempts: 1,
	}
}

func ids(letters []syncstate.DeadLetter) []int64 {
	var out []int64
	for _, l := range letters {
		out = append(out, l.ID)
	}
	return out
}

func TestDeadLetterLifecycle(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	dl := s.DeadLetters()
	failed := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	l1 := letter("contacts-to-hubspot", `{"id":1}`)
	l1.FailedAt = failed
	if err := dl.Put(ctx, []syncstate.DeadLetter{l1, letter("contacts-to-hubspot", `{"id":2}`), letter("orders-to-erp", `{"id":3}`)}); err != nil {
		t.Fatal(err)
	}

	list, err := s.ListDeadLetters(ctx, DeadLetterFilter{Pipeline: "contacts-to-hubspot"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Key != `{"id":2}` || list[1].Key != `{"id":1}` {
		t.Fatalf("list = %+v, want keys 2 then 1 (newest first)", list)
	}
	id1, id2 := list[1].ID, list[0].ID
	if l := list[1]; l.Status != StatusDead || l.Record != nil || l.Error != l1.Error || !l.FailedAt.Equal(failed) || l.Op != cdc.OpUpdate {
		t.Fatalf("listed letter = %+v", l)
	}
	got, err := s.GetDeadLetter(ctx, id1)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Record) != `{"email":"not-an-email"}` || string(got.Event) != `{"op":"u","after":{"id":1}}` || got.Attempts != 1 || got.EventID != l1.EventID {
		t.Fatalf("get = %+v\nrecord %s\nevent %s", got, got.Record, got.Event)
	}
	if _, err := s.GetDeadLetter(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get 999: %v, want ErrNotFound", err)
	}

	// Nothing is replayed until an operator asks.
	if r, err := dl.Replays(ctx, "contacts-to-hubspot", 10); err != nil || len(r) != 0 {
		t.Fatalf("replays before a request: %v %v", r, err)
	}
	others, _ := s.ListDeadLetters(ctx, DeadLetterFilter{Pipeline: "orders-to-erp"})
	n, err := s.RequestReplay(ctx, []int64{id1, others[0].ID, 999})
	if err != nil || n != 2 {
		t.Fatalf("request replay: %d, %v; want 2 (999 does not exist)", n, err)
	}
	if n, _ := s.RequestReplay(ctx, []int64{id1}); n != 0 {
		t.Fatalf("second request marked %d, want 0", n)
	}

	r, err := dl.Replays(ctx, "contacts-to-hubspot", 10)
	if err != nil || !slices.Equal(ids(r), []int64{id1}) {
		t.Fatalf("replays = %v, %v; want [%d]", ids(r), err, id1)
	}
	if string(r[0].Record) == "" || r[0].Error != l1.Error {
		t.Fatalf("replayed letter lacks what it needs: %+v", r[0])
	}
	if again, _ := dl.Replays(ctx, "contacts-to-hubspot", 10); len(again) != 0 {
		t.Fatalf("taken twice: %v", ids(again))
	}
	if err := dl.Resolve(ctx, id1, nil); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetDeadLetter(ctx, id1)
	if got.Status != StatusReplayed || got.ResolvedAt.IsZero() || got.Attempts != 2 {
		t.Fatalf("after a good replay: %+v", got)
	}
	if err := dl.Resolve(ctx, id1, nil); !errors.Is(err, ErrNotReplaying) {
		t.Fatalf("resolve twice: %v, want ErrNotReplaying", err)
	}
	if err := dl.Resolve(ctx, 999, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("resolve 999: %v, want ErrNotFound", err)
	}

	// A failed replay goes back to dead with its error.
	if n, err := s.RequestReplayAll(ctx, "contacts-to-hubspot"); err != nil || n != 1 {
		t.Fatalf("request replay all: %d, %v; want 1", n, err)
	}
	r, _ = dl.Replays(ctx, "contacts-to-hubspot", 10)
	if !slices.Equal(ids(r), []int64{id2}) {
		t.Fatalf("replays = %v, want [%d]", ids(r), id2)
	}
	if err := dl.Resolve(ctx, id2, errors.New("400 Bad Request: still invalid")); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetDeadLetter(ctx, id2)
	if got.Status != StatusDead || got.LastError != "400 Bad Request: still invalid" || got.Attempts != 2 || !got.ResolvedAt.IsZero() || got.Error != l1.Error {
		t.Fatalf("after a failed replay: %+v", got)
	}

	if n, err := s.Discard(ctx, []int64{id1, id2}); err != nil || n != 1 {
		t.Fatalf("discard: %d, %v; want 1 (a replayed letter stays replayed)", n, err)
	}
	if l, _ := s.ListDeadLetters(ctx, DeadLetterFilter{Status: StatusDiscarded}); len(l) != 1 || l[0].ID != id2 || l[0].ResolvedAt.IsZero() {
		t.Fatalf("discarded = %+v", l)
	}
	if n, _ := s.RequestReplay(ctx, []int64{id2}); n != 0 {
		t.Fatal("a discarded letter was marked for replay")
	}
	if l, _ := s.ListDeadLetters(ctx, DeadLetterFilter{Limit: 2}); len(l) != 2 {
		t.Fatalf("limit 2 listed %d", len(l))
	}
}

func TestReplaysTakesEachLetterOnceUnderConcurrentCallers(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	dl := s.DeadLetters()
	var put []syncstate.DeadLetter
	for i := range 300 {
		put = append(put, letter("p", fmt.Sprintf(`{"id":%d}`, i)))
	}
	if err := dl.Put(ctx, put); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RequestReplayAll(ctx, "p"); err != nil || n != 300 {
		t.Fatalf("request: %d, %v", n, err)
	}
	var (
		mu    sync.Mutex
		taken = map[int64]int{}
		wg    sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			for {
				r, err := dl.Replays(ctx, "p", 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(r) == 0 {
					return
				}
				mu.Lock()
				for _, l := range r {
					taken[l.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(taken) != 300 {
		t.Fatalf("%d letters taken, want 300", len(taken))
	}
	for id, n := range taken {
		if n != 1 {
			t.Fatalf("letter %d taken %d times", id, n)
		}
	}
}

func TestReplaysRetakesALetterWhoseLeaseExpired(t *testing.T) {
	s, url := openStore(t)
	ctx := context.Background()
	dl := s.DeadLetters()
	if err := dl.Put(ctx, []syncstate.DeadLetter{letter("p", `{"id":1}`)}); err != nil {
		t.Fatal(err)
	}
	s.RequestReplayAll(ctx, "p")
	r, _ := dl.Replays(ctx, "p", 1)
	if len(r) != 1 {
		t.Fatal("not taken")
	}
	// The process that took it died long ago.
	execSQL(t, url, "UPDATE cdcd.dead_letters SET status_at = now() - $1::interval", (ReplayLease + time.Minute).String())
	again, _ := dl.Replays(ctx, "p", 1)
	if !slices.Equal(ids(again), ids(r)) {
		t.Fatalf("retaken %v, want %v", ids(again), ids(r))
	}
}

// Regression: a change holding \u0000 could not be dead-lettered (jsonb
// refuses it, 22P05), so its batch was retried for good. Whatever bytes a
// letter holds, it is stored, and read back byte for byte.
func TestDeadLetterKeepsExactBytes(t *testing.T) {
	s, url := openStore(t)
	ctx := context.Background()
	dl := s.DeadLetters()
	l := letter("hostile", "{\"id\":\"7\xff\\u0000\"}")
	l.Record = json.RawMessage(`{"name":"A\u0000B","z":1,"a":2}`)
	l.Event = json.RawMessage("{\"after\":{\"name\":\"A\\u0000B\",\"bad\":\"\xff\xfe\"},\"op\":\"u\"}")
	l.EventID = "hubspot:1\x00"
	l.Error = "apply: invalid byte sequence 0x00 in \"\xff\""
	if err := dl.Put(ctx, []syncstate.DeadLetter{l}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	list, err := s.ListDeadLetters(ctx, DeadLetterFilter{Pipeline: "hostile"})
	if err != nil || len(list) != 1 {
		t.Fatalf("list = %+v, %v", list, err)
	}
	got, err := s.GetDeadLetter(ctx, list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Record) != string(l.Record) || string(got.Event) != string(l.Event) || got.Key != l.Key {
		t.Errorf("got record %q event %q key %q; want them byte for byte", got.Record, got.Event, got.Key)
	}
	if got.EventID != "hubspot:1\uFFFD" {
		t.Errorf("event id %q", got.EventID)
	}
	if n := queryInt(t, url, `SELECT count(*) FROM cdcd.dead_letters WHERE local_key = '{"id":"7`+"\uFFFD"+`\u0000"}'`); n != 1 {
		t.Errorf("%d letters with the readable key, want 1", n)
	}
	if _, err := s.RequestReplay(ctx, []int64{got.ID}); err != nil {
		t.Fatal(err)
	}
	taken, err := dl.Replays(ctx, "hostile", 10)
	if err != nil || len(taken) != 1 || taken[0].Key != l.Key || string(taken[0].Event) != string(l.Event) {
		t.Fatalf("replays = %+v, %v", taken, err)
	}
}

// TestInterruptedReplayReleasesTheLetter: a letter whose replay was cut
// short waits for a replay again, at once and without an attempt counted;
// one already resolved keeps its outcome.
func TestInterruptedReplayReleasesTheLetter(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	dl := s.DeadLetters()
	if err := dl.Put(ctx, []syncstate.DeadLetter{letter("p", `{"id":1}`), letter("p", `{"id":2}`)}); err != nil {
		t.Fatal(err)
	}
	s.RequestReplayAll(ctx, "p")
	r, _ := dl.Replays(ctx, "p", 2)
	if len(r) != 2 {
		t.Fatalf("%d letters taken, want 2", len(r))
	}
	if err := dl.Resolve(ctx, r[0].ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := dl.Resolve(ctx, r[0].ID, syncstate.ErrReplayInterrupted); !errors.Is(err, ErrNotReplaying) {
		t.Fatalf("releasing a replayed letter: %v, want ErrNotReplaying", err)
	}
	if err := dl.Resolve(ctx, r[1].ID, syncstate.ErrReplayInterrupted); err != nil {
		t.Fatal(err)
	}
	again, _ := dl.Replays(ctx, "p", 2)
	if len(again) != 1 || again[0].ID != r[1].ID || again[0].Attempts != r[1].Attempts {
		t.Fatalf("retaken %v, want only letter %d with %d attempts", again, r[1].ID, r[1].Attempts)
	}
}
