package backfill

import (
	"sync"

	"github.com/cdcd-dev/cdcd/cdc"
)

// spare is the memory of chunks delivered, which the reads of the chunks
// after them reuse instead of allocating (and zeroing, and scanning) 6 to
// 7 MB a chunk of 10,000 rows afresh: their events and the blocks their
// values and fields were cut from (see arena). A chunk's memory is handed
// back only once every sink its rows went to delivered them and forgets
// them (Handler.Reuse, cdc.Forgetful): nothing reads it after.
// The zero value is ready; nil reuses nothing.
type spare struct {
	mu     sync.Mutex
	events [][]cdc.Event
	bufs   [][]byte
	flds   [][]cdc.Field
}

// chunkMemory is what one chunk's read cut its rows from: its events and
// the whole blocks of its arena (a row too large for a block has an array
// of its own, left to the garbage collector).
type chunkMemory struct {
	events []cdc.Event
	bufs   [][]byte
	flds   [][]cdc.Field
}

// spareBlocks bounds the blocks of each kind kept: more than the chunks
// read ahead need (a chunk of 8 MiB of values is 128 value blocks).
const spareBlocks = 512

// put hands a delivered chunk's memory back.
func (s *spare) put(m chunkMemory) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.events != nil && len(s.events) < 2 {
		s.events = append(s.events, m.events[:0])
	}
	for _, b := range m.bufs {
		if len(s.bufs) < spareBlocks {
			s.bufs = append(s.bufs, b[:0])
		}
	}
	for _, f := range m.flds {
		if len(s.flds) < spareBlocks {
			s.flds = append(s.flds, f[:0])
		}
	}
}

// takeEvents returns an empty slice of at least n events' room.
func (s *spare) takeEvents(n int) []cdc.Event {
	if s != nil {
		s.mu.Lock()
		k := len(s.events)
		var e []cdc.Event
		if k > 0 {
			e, s.events = s.events[k-1], s.events[:k-1]
		}
		s.mu.Unlock()
		if cap(e) >= n {
			return e
		}
	}
	return make([]cdc.Event, 0, n)
}

// takeBytes returns an empty block of blockSize bytes.
func (s *spare) takeBytes() []byte {
	if s != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		if k := len(s.bufs); k > 0 {
			b := s.bufs[k-1]
			s.bufs = s.bufs[:k-1]
			return b
		}
	}
	return make([]byte, 0, blockSize)
}

// takeFields returns an empty block of fieldBlock fields.
func (s *spare) takeFields() []cdc.Field {
	if s != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		if k := len(s.flds); k > 0 {
			f := s.flds[k-1]
			s.flds = s.flds[:k-1]
			return f
		}
	}
	return make([]cdc.Field, 0, fieldBlock)
}
