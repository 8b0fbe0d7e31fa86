package backfill

import (
	"context"
	"sync"
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
// At most three chunks are held: one being delivered, one whose high
// watermark is written, one read.
type ahead struct {
	out  chan step // chunks with their high watermark written, in order
	quit chan struct{}
	wg   sync.WaitGroup
}

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
	a := &ahead{out: make(chan step), quit: make(chan struct{})}
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
		for s := range reads {
			if s.err == nil && s.r.n > 0 {
				s.r.at.asked = time.Now()
				s.err = emit(ctx, wm, "high "+s.r.c.id)
				s.r.at.high = time.Now()
			}
			if !a.send(a.out, s, h.Merger) {
				// Drain the reader, which may be sending.
				for s := range reads {
					if s.r != nil {
						h.Merger.closeChunk(s.r.c)
					}
				}
				return
			}
		}
	}()
	return a
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
