package backfill

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ahead reads chunks in key order and writes their high watermarks, in
// chunk order, while the chunks before are delivered: one goroutine reads
// (low watermark and rows, on a connection of its own), another writes
// the high watermarks (on another). A chunk whose high watermark is
// written is handed to the handler, which releases it (Merger.release)
// once the chunk before is durable and its cursor saved: until then the
// stream holds its rows back at the watermark (Merger.Gate). So the high
// watermark's commit and its trip through the stream overlap the delivery
// of the chunk before, and a crash still repeats at most one chunk.
//
// The stream waits at a held high watermark, and every change behind it
// with it, for the delivery of the chunk before. So a high watermark is
// written ahead only while chunks are delivered in under aheadBudget;
// after a slower one (a rate-limited system, a sink retrying), it is
// written once the chunks before are saved, as the stream then never
// waits.
//
// At most three chunks are held: one being delivered, one whose high
// watermark is written, one read.
type ahead struct {
	out   chan step // chunks with their high watermark written, in order
	quit  chan struct{}
	wg    sync.WaitGroup
	slow  atomic.Bool  // the last chunk delivered took aheadBudget or more
	saved atomic.Int64 // chunks handed over and saved
	wake  chan struct{}
}

// aheadBudget is the longest delivery after which the next high watermark
// is still written ahead of the chunk before being saved.
const aheadBudget = 100 * time.Millisecond

// step is a chunk read (with n 0 once the table's end is reached), or
// the error that ended the reading.
type step struct {
	r   *chunkRead
	err error
}

// readFunc reads the chunk after key after, of at most limit rows.
type readFunc func(after []string, limit int) (*chunkRead, error)

// startAhead starts reading after key after, in chunks of size rows or
// fewer (chunkLimit), writing high watermarks on wm. Queries are not cut
// short by stop (a cancelled query closes its connection): they end on
// ctx only.
func (h *Handler) startAhead(ctx context.Context, wm *pgconn.PgConn, read readFunc, after []string, size int) *ahead {
	a := &ahead{out: make(chan step), quit: make(chan struct{}), wake: make(chan struct{}, 1)}
	reads := make(chan step)
	a.wg.Add(2)
	go func() {
		defer a.wg.Done()
		defer close(reads)
		limit := size
		for {
			r, err := read(after, limit)
			if !a.send(reads, step{r, err}, h.Merger) {
				return
			}
			if err != nil || r.n == 0 || !r.more {
				return
			}
			after, limit = r.last, chunkLimit(size, r)
		}
	}()
	go func() {
		defer a.wg.Done()
		defer close(a.out)
		var sent int64
		for s := range reads {
			if s.err == nil && s.r.n > 0 && a.slow.Load() {
				if !a.waitSaved(sent) {
					h.Merger.closeChunk(s.r.c)
					drain(reads, h.Merger)
					return
				}
				// The chunks before are saved: the stream need not wait.
				h.Merger.release(s.r.c)
			}
			if s.err == nil && s.r.n > 0 {
				s.r.at.asked = time.Now()
				s.err = emit(ctx, wm, "high "+s.r.c.id)
				s.r.at.high = time.Now()
				if s.err != nil {
					// Nothing delivers the chunk: forget it, so that the
					// stream does not wait at its watermark if it was
					// written after all.
					h.Merger.closeChunk(s.r.c)
					s.r = nil
				}
			}
			sent++
			if !a.send(a.out, s, h.Merger) {
				drain(reads, h.Merger)
				return
			}
		}
	}()
	return a
}

// drain closes the chunks the reader still sends on reads, until it ends
// (it may be sending when stop comes).
func drain(reads <-chan step, m *Merger) {
	for s := range reads {
		if s.r != nil {
			m.closeChunk(s.r.c)
		}
	}
}

// waitSaved waits until n chunks handed over are saved; false if stop
// came first.
func (a *ahead) waitSaved(n int64) bool {
	for a.saved.Load() < n {
		select {
		case <-a.wake:
		case <-a.quit:
			return false
		}
	}
	return true
}

// savedOne tells that the chunk last handed over is durable and its cursor
// saved, its delivery having taken took.
func (a *ahead) savedOne(took time.Duration) {
	a.slow.Store(took >= aheadBudget)
	a.saved.Add(1)
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// send hands s over on ch, or closes its chunk if stop came first.
func (a *ahead) send(ch chan<- step, s step, m *Merger) bool {
	select {
	case ch <- s:
		return true
	case <-a.quit:
		if s.r != nil {
			m.closeChunk(s.r.c)
		}
		return false
	}
}

// next is the next chunk, its high watermark written; ok is false once
// nothing follows (the reading ended in the chunk before).
func (a *ahead) next(ctx context.Context) (s step, ok bool) {
	select {
	case <-ctx.Done():
		return step{err: ctx.Err()}, true
	case s, ok = <-a.out:
		return s, ok
	}
}

// stop ends the reading and waits for it: the chunks read and not handed
// over are closed (their watermarks, if they come, are ignored).
func (a *ahead) stop() {
	close(a.quit)
	a.wg.Wait()
}
