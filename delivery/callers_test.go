package delivery

import (
	"sync"
	"testing"
	"time"
)

// Calls run on kept goroutines, at most max of them wait for the next,
// and stop ends those that wait.
func TestCallers(t *testing.T) {
	t.Parallel()
	c := newCallers(2)
	var wg sync.WaitGroup
	ran := make(chan int, 10)
	release := make(chan struct{})
	for i := range 10 {
		wg.Add(1)
		c.run(func() { defer wg.Done(); ran <- i; <-release }) // ten at once
	}
	close(release)
	wg.Wait()
	if len(ran) != 10 {
		t.Fatalf("%d calls ran, want 10", len(ran))
	}
	waitIdle := func(want int64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); c.idle.Load() != want; {
			if time.Now().After(deadline) {
				t.Fatalf("%d goroutines wait, want %d", c.idle.Load(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitIdle(2)
	wg.Add(1)
	c.run(func() { wg.Done() })
	wg.Wait()
	waitIdle(2)
	c.stop()
	waitIdle(0)
	wg.Add(1)
	c.run(func() { wg.Done() }) // after stop, still run
	wg.Wait()
	c.stop()
}

// A run between two calls, with records ready for the next, is not idle:
// its ledger waits for the next call's settlement rather than store a
// group of its own for the calls that just ended.
func TestBookIdle(t *testing.T) {
	t.Parallel()
	b := newBook(1, nil)
	if !b.idle() {
		t.Fatal("a new book is not idle")
	}
	b.dispatching(true)
	if b.idle() {
		t.Fatal("idle with calls about to start")
	}
	b.dispatching(false)
	b.call()
	if b.idle() {
		t.Fatal("idle with a call in flight")
	}
	b.end()
	if !b.idle() {
		t.Fatal("not idle once the calls ended and none is to start")
	}
}
