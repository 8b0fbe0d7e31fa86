package cdc

import (
	"sync"
	"sync/atomic"
)

// Tracker decides how far the replication slot may be confirmed. The reader
// opens a Txn per transaction (in commit order), counts the events it hands
// downstream, and seals the Txn with the transaction's end LSN at commit.
// Acks may arrive in any order and from any goroutine; Confirmed is the end
// LSN of the newest transaction that, with every transaction before it, is
// sealed and fully acknowledged.
type Tracker struct {
	mu        sync.Mutex
	queue     []*Txn // open or unacknowledged transactions, in commit order
	confirmed LSN
	err       error
	failed    chan struct{}
}

// NewTracker starts a tracker at the given confirmed position (the slot's
// confirmed_flush_lsn).
func NewTracker(start LSN) *Tracker {
	return &Tracker{confirmed: start, failed: make(chan struct{})}
}

// Txn is one transaction's share of the tracker. It is the Acker of every
// event of that transaction.
type Txn struct {
	t       *Tracker
	pending atomic.Int64
	end     LSN
	sealed  bool // guarded by t.mu
}

// Open starts tracking the next transaction. Only the reader calls it, in
// commit order.
func (t *Tracker) Open() *Txn {
	x := &Txn{t: t}
	t.mu.Lock()
	t.queue = append(t.queue, x)
	t.mu.Unlock()
	return x
}

// Add counts n more events that must be acknowledged before the
// transaction is durable. Call it before handing the events downstream.
func (x *Txn) Add(n int) { x.pending.Add(int64(n)) }

// Seal records the transaction's end LSN: nothing more will be added.
func (x *Txn) Seal(end LSN) {
	x.t.mu.Lock()
	x.end = end
	x.sealed = true
	x.t.settleLocked()
	x.t.mu.Unlock()
}

// Ack settles one event of the transaction. A non-nil error fails the
// tracker (see Failed).
func (x *Txn) Ack(err error) {
	if err != nil {
		x.t.fail(err)
	}
	if x.pending.Add(-1) == 0 {
		x.t.mu.Lock()
		x.t.settleLocked()
		x.t.mu.Unlock()
	}
}

// AckN settles n events at once (one Kafka batch, say).
func (x *Txn) AckN(n int, err error) {
	if err != nil {
		x.t.fail(err)
	}
	if x.pending.Add(-int64(n)) == 0 {
		x.t.mu.Lock()
		x.t.settleLocked()
		x.t.mu.Unlock()
	}
}

func (t *Tracker) settleLocked() {
	if t.err != nil {
		return // a nack: nothing after it may be confirmed
	}
	n := 0
	for _, x := range t.queue {
		if !x.sealed || x.pending.Load() != 0 {
			break
		}
		if x.end > t.confirmed {
			t.confirmed = x.end
		}
		n++
	}
	if n > 0 {
		clear(t.queue[:n])
		t.queue = t.queue[n:]
	}
}

func (t *Tracker) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err == nil {
		t.err = err
		close(t.failed)
	}
}

// Confirmed is the highest LSN with nothing unresolved at or below it.
func (t *Tracker) Confirmed() LSN {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.confirmed
}

// InFlight is the number of transactions not yet confirmed.
func (t *Tracker) InFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.queue)
}

// AdvanceIdle moves the confirmed position to lsn when nothing is in flight,
// which is how an idle slot keeps up with the server's WAL. It reports
// whether it moved.
func (t *Tracker) AdvanceIdle(lsn LSN) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.queue) > 0 || t.err != nil || lsn <= t.confirmed {
		return false
	}
	t.confirmed = lsn
	return true
}

// Failed is closed when an event was nacked.
func (t *Tracker) Failed() <-chan struct{} { return t.failed }

// Err is the first nack's error, or nil.
func (t *Tracker) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}
