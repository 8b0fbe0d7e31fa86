package delivery

import (
	"context"
	"sync"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// keyQueue holds the pending items of one local record, head first. Only
// the scheduler touches a queue, except while a worker writes its head.
type keyQueue struct {
	items   []*item
	extID   string         // the system's id, from the link or the last write
	deleted bool           // the record was deleted in the system by cdcd
	version time.Time      // the system's version at the last sync, from the link or the last write
	base    map[string]any // the fields last synced, from the link or the last write
	pending bool           // a create of the record was sent and not settled (Settler)
	readyAt time.Time
	first   [1]*item // items' first array: most queues hold one item
}

// externalID is the id a record with op is written with: none after a
// delete, unless it deletes again.
func (q *keyQueue) externalID(op cdc.Op) string {
	if q.deleted && op != cdc.OpDelete {
		return ""
	}
	return q.extID
}

type runStats struct{ delivered, retried, dead int }

func (s *runStats) add(o runStats) {
	s.delivered += o.delivered
	s.retried += o.retried
	s.dead += o.dead
}

// report is a worker's answer for the queues whose heads it wrote.
type report struct {
	qs       []*keyQueue
	resolved int  // items delivered or dead-lettered
	more     bool // the queues hold more to write
	stats    runStats
	err      error // a store failed or ctx ended: the run stops
}

// queues groups items by local record, in order, and seeds each queue
// with its record's link and pending create.
func (p *Pipeline) queues(items []*item, links map[syncstate.LinkRef]*syncstate.Link, pending map[syncstate.LinkRef]bool) []*keyQueue {
	at := make(map[identity]*keyQueue, len(items))
	qs := make([]*keyQueue, 0, len(items))
	all := make([]keyQueue, 0, len(items)) // never grown: its queues do not move
	for _, it := range items {
		id := it.identity()
		q := at[id]
		if q == nil {
			all = append(all, keyQueue{})
			q = &all[len(all)-1]
			q.items = q.first[:0]
			if ref, ok := it.ref(p.cfg.System); ok {
				if l := links[ref]; l != nil {
					q.extID = l.ExternalID
					q.deleted = l.Deleted
					q.version = parseVersion(l.Version)
					q.base = l.Base
				}
				q.pending = pending[ref]
			}
			at[id] = q
			qs = append(qs, q)
		}
		q.items = append(q.items, it)
	}
	return qs
}

// settling bounds the attempts of a run, as a multiple of Concurrency:
// those in a Writer call and those whose bookkeeping waits to be stored.
// It bounds the calls made after a store failed, before it is known.
const settling = 64

// deliver writes items until each is delivered or dead-lettered. It
// returns early only when ctx ends or a store fails, after the Writer
// calls in flight returned. It calls over, unless nil, once no Writer
// call is in flight and none will be made (what is left is bookkeeping),
// or when it returns.
func (p *Pipeline) deliver(ctx context.Context, items []*item, links map[syncstate.LinkRef]*syncstate.Link, replay bool, over func()) (runStats, error) {
	var stats runStats
	ended := false
	waited := func() {}
	callsOver := func() {
		if ended {
			return
		}
		ended = true
		waited()
		if over != nil {
			over()
		}
	}
	defer callsOver()
	if len(items) == 0 {
		return stats, nil
	}
	pending := len(items)
	p.met.depth.Add(float64(pending))
	defer func() { p.met.depth.Sub(float64(pending)) }()
	waited = p.met.oldest.begin(oldestCommit(items))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	creates, err := p.pendingCreates(ctx, items, links)
	if err != nil {
		return stats, err
	}
	ready := p.queues(items, links, creates)
	var waiting []*keyQueue
	reports := make(chan []report)
	written := make(chan bool)
	// Room for every attempt in flight: a call's goroutine never waits
	// for the ledger to take its settlement, so it is free for the next.
	book := newBook(settling*p.cfg.Concurrency, reports)
	var ledger sync.WaitGroup
	ledger.Go(func() { p.ledger(ctx, book) })
	defer func() { close(book.in); ledger.Wait() }()
	var wg sync.WaitGroup
	defer wg.Wait()
	// calling counts the Writer calls in flight (at most Concurrency);
	// inflight the attempts not reported yet, whose calls may be over and
	// their bookkeeping waiting for the ledger (at most settling times
	// Concurrency); quiet the attempts whose call is over and whose
	// queues hold nothing more to write.
	calling, inflight, quiet := 0, 0, 0
	var fail error
	done := ctx.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		for fail == nil && calling < p.cfg.Concurrency && inflight < settling*p.cfg.Concurrency && len(ready) > 0 {
			var batch []*keyQueue
			batch, ready = p.take(ready)
			calling++
			inflight++
			book.call()
			wg.Add(1)
			p.callers.run(func() {
				defer wg.Done()
				p.attempt(ctx, batch, replay, book, func(more bool) {
					book.end()
					written <- more
				}, func(r report) {
					reports <- []report{r}
				})
			})
		}
		if inflight == 0 && (fail != nil || len(ready)+len(waiting) == 0) {
			break
		}
		if fail == nil && calling == 0 && len(ready)+len(waiting) == 0 && inflight == quiet {
			callsOver()
		}
		book.dispatching(fail == nil && len(ready) > 0 && inflight < settling*p.cfg.Concurrency)
		var wake <-chan time.Time
		if fail == nil && len(waiting) > 0 {
			timer.Reset(time.Until(earliest(waiting)))
			wake = timer.C
		}
		select {
		case more := <-written:
			calling--
			if !more {
				quiet++
			}
		case rs := <-reports:
			now := time.Now()
			resolved := 0
			for _, r := range rs {
				inflight--
				if !r.more {
					quiet--
				}
				if r.err != nil {
					if fail == nil {
						fail = r.err
						cancel()
					}
					continue
				}
				stats.add(r.stats)
				resolved += r.resolved
				for _, q := range r.qs {
					switch {
					case len(q.items) == 0:
					case q.readyAt.After(now):
						waiting = append(waiting, q)
					default:
						ready = append(ready, q)
					}
				}
			}
			pending -= resolved
			p.met.depth.Sub(float64(resolved))
		case <-wake:
			now := time.Now()
			still := waiting[:0]
			for _, q := range waiting {
				if q.readyAt.After(now) {
					still = append(still, q)
				} else {
					ready = append(ready, q)
				}
			}
			clear(waiting[len(still):])
			waiting = still
		case <-done:
			done = nil
			if fail == nil {
				fail = ctx.Err()
			}
		}
	}
	return stats, fail
}

// take picks the next Writer call: up to MaxBatch queues whose heads have
// distinct keys, oldest ready first; or one queue whose head goes alone
// (its last call failed as a whole: see item.alone).
func (p *Pipeline) take(ready []*keyQueue) (batch, rest []*keyQueue) {
	if p.batch == 1 {
		return ready[:1:1], ready[1:]
	}
	keys := make(map[string]bool, min(p.batch, len(ready)))
	rest = make([]*keyQueue, 0, len(ready))
	single := false
	for _, q := range ready {
		k := q.items[0].rec.Key
		switch {
		case single:
		case q.items[0].alone:
			if len(batch) == 0 {
				batch, single = append(batch, q), true
				continue
			}
		case len(batch) < p.batch && !keys[k]:
			keys[k] = true
			batch = append(batch, q)
			continue
		}
		rest = append(rest, q)
	}
	return batch, rest
}

func earliest(qs []*keyQueue) time.Time {
	t := qs[0].readyAt
	for _, q := range qs[1:] {
		if q.readyAt.Before(t) {
			t = q.readyAt
		}
	}
	return t
}

// oldestCommit is the commit time of the oldest of items, in Unix seconds
// (now for items without one).
func oldestCommit(items []*item) float64 {
	oldest := time.Now()
	for _, it := range items {
		if it.rec.Event == nil {
			continue
		}
		if c := it.rec.Event.CommitTime; !c.IsZero() && c.Before(oldest) {
			oldest = c
		}
	}
	return float64(oldest.UnixNano()) / 1e9
}
