package delivery

import (
	"sync"
	"sync/atomic"
)

// callers runs a pipeline's Writer calls on goroutines kept from one call
// to the next. A call through net/http grows a fresh goroutine's stack
// several times (copying it each time); a kept goroutine has grown it
// once. At most max goroutines wait for a call; the others end.
type callers struct {
	jobs    chan func()
	quit    chan struct{}
	stopped sync.Once
	idle    atomic.Int64
	max     int64
}

func newCallers(max int) *callers {
	return &callers{jobs: make(chan func()), quit: make(chan struct{}), max: int64(max)}
}

// run runs f on a waiting goroutine, or on a new one when none waits.
func (c *callers) run(f func()) {
	select {
	case c.jobs <- f:
	default:
		go c.loop(f)
	}
}

func (c *callers) loop(f func()) {
	for {
		f()
		if c.idle.Add(1) > c.max {
			c.idle.Add(-1)
			return
		}
		select {
		case f = <-c.jobs:
			c.idle.Add(-1)
		case <-c.quit:
			c.idle.Add(-1)
			return
		}
	}
}

// stop ends the goroutines waiting for a call, and those that finish
// their call later. run still runs f after stop, on a new goroutine.
func (c *callers) stop() {
	c.stopped.Do(func() { close(c.quit) })
}
