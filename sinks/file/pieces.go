package file

import (
	"sync/atomic"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

// writePieces appends the events to a synced file in pieces of about
// pieceBytes. Each piece is written (and its writeback started) on a
// goroutine of its own while the next is encoded into the other of two
// buffers, so the kernel's copy of one piece overlaps the encoding of
// the next. It returns once every piece is written or one failed: the
// bytes written and the first error. After a failed write no piece is
// encoded or written.
func (s *sink) writePieces(events []cdc.Event, now time.Time) (int64, error) {
	full := make(chan []byte, 1)
	free := make(chan []byte, 2)
	done := make(chan struct{})
	var failed atomic.Bool
	var written int64
	var err error
	go func() {
		defer close(done)
		for b := range full {
			if err == nil {
				if _, err = s.w.Write(b); err == nil {
					startWriteback(s.out, s.size+written, int64(len(b)))
					written += int64(len(b))
				} else {
					failed.Store(true)
				}
			}
			free <- b[:0]
		}
	}()
	free <- s.bufs[1][:0]
	buf := s.bufs[0][:0]
	for i := range events {
		buf = s.enc.Append(buf, &events[i], &s.src, now)
		buf = append(buf, '\n')
		if len(buf) >= pieceBytes && i < len(events)-1 {
			full <- buf
			buf = <-free
			if failed.Load() {
				break
			}
		}
	}
	if !failed.Load() {
		full <- buf
	} else {
		free <- buf
	}
	close(full)
	<-done
	for i := range s.bufs {
		if b := <-free; cap(b) <= maxKeptBuffer {
			s.bufs[i] = b
		} else {
			s.bufs[i] = nil
		}
	}
	return written, err
}
