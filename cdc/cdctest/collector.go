package cdctest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

// Collector is a cdc.Publisher that keeps every event and acknowledges it
// at once, unless Hold is set, in which case acks wait for Release.
type Collector struct {
	mu     sync.Mutex
	events []cdc.Event
	held   []cdc.Event
	Hold   bool
}

// Publish records the events.
func (c *Collector) Publish(_ context.Context, events []cdc.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, events...)
	if c.Hold {
		c.held = append(c.held, events...)
		return nil
	}
	for i := range events {
		events[i].Settle(nil)
	}
	return nil
}

// Release acknowledges the held events with err.
func (c *Collector) Release(err error) {
	c.mu.Lock()
	held := c.held
	c.held = nil
	c.mu.Unlock()
	for i := range held {
		held[i].Settle(err)
	}
}

// Close does nothing.
func (c *Collector) Close(context.Context) error { return nil }

// Events returns a copy of what was published so far.
func (c *Collector) Events() []cdc.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]cdc.Event(nil), c.events...)
}

// WaitFor polls until cond holds for the published events, failing the
// test after the timeout.
func (c *Collector) WaitFor(t testing.TB, timeout time.Duration, what string, cond func([]cdc.Event) bool) []cdc.Event {
	t.Helper()
	var got []cdc.Event
	Eventually(t, timeout, what, func() bool {
		got = c.Events()
		return cond(got)
	})
	return got
}

// Eventually polls cond every few milliseconds until it holds, failing the
// test with what after the timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
