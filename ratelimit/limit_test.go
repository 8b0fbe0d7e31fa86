package ratelimit

import (
	"testing"
	"time"
)

func TestLimiterNeverExceedsTheRollingWindow(t *testing.T) {
	l := NewLimiter(Rate{Requests: 10, Per: time.Second})
	start := time.Unix(1000, 0)
	var admitted []time.Time
	// Simulate callers that retry as soon as they are told.
	now := start
	for now.Before(start.Add(5 * time.Second)) {
		if wait := l.reserve(now); wait > 0 {
			now = now.Add(wait)
			continue
		}
		admitted = append(admitted, now)
		now = now.Add(time.Millisecond)
	}
	for i := range admitted {
		n := 0
		for j := i; j < len(admitted) && admitted[j].Sub(admitted[i]) < time.Second; j++ {
			n++
		}
		if n > 10 {
			t.Fatalf("%d calls within one second starting at %v", n, admitted[i].Sub(start))
		}
	}
	// Full use of the budget: about 10 per second over 5 seconds.
	if len(admitted) < 45 {
		t.Fatalf("admitted %d calls in 5s, want about 50", len(admitted))
	}
}

func TestLimiterPause(t *testing.T) {
	l := NewLimiter(Rate{Requests: 100, Per: time.Second})
	l.Pause(time.Hour)
	if wait := l.reserve(time.Now()); wait < 59*time.Minute {
		t.Fatalf("paused limiter asks to wait %v, want about an hour", wait)
	}
}

func TestLimitersShareOneLimiterPerAccount(t *testing.T) {
	ls := NewLimiters()
	a := ls.For("hubspot:portal-1", Rate{Requests: 100, Per: 10 * time.Second})
	if ls.For("hubspot:portal-1", Rate{Requests: 5, Per: time.Second}) != a {
		t.Fatal("two limiters for one account")
	}
	if ls.For("hubspot:portal-2", Rate{Requests: 100, Per: 10 * time.Second}) == a {
		t.Fatal("accounts share a limiter")
	}
}

func TestNilLimitersGiveEachCallerItsOwnLimiter(t *testing.T) {
	var ls *Limiters
	a := ls.For("acct", Rate{Requests: 1, Per: time.Hour})
	b := ls.For("acct", Rate{Requests: 1, Per: time.Hour})
	if a == nil || a == b {
		t.Fatal("a nil set must hand out separate limiters")
	}
	if wait := a.reserve(time.Now()); wait != 0 {
		t.Fatalf("first call waits %v", wait)
	}
	if wait := b.reserve(time.Now()); wait != 0 {
		t.Fatalf("another caller's limiter was used up: waits %v", wait)
	}
}
