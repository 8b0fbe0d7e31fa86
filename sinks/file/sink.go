package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
)

// maxKeptBuffer is the largest batch buffer kept between writes.
const maxKeptBuffer = 8 << 20

// maxBatch is the most events one Write takes (cdc.Batcher). A Write
// costs one sync whatever its size: a sync per 512 events (the bus's
// default) spent more time syncing than writing. It holds a backfill's
// chunk of 10,000 rows (jobs.chunk_size's default): one sync a chunk.
const maxBatch = 12288

// pieceBytes is how much of a batch is written at a time when it is
// synced: each piece is written and its writeback started while the next
// is encoded, so that the sync at the end waits for the last piece, not
// the batch (writePieces).
const pieceBytes = 1 << 20

var errClosed = errors.New("file sink is closed")

// output is an open events file; *os.File implements it.
type output interface {
	io.Writer
	Sync() error
	Truncate(size int64) error
	Close() error
}

// sink writes one line per event with a single write per batch.
//
// For a file, the sink must be the file's only writer: a Write that fails
// truncates the file back to where the batch began, so that a retried
// batch never follows a torn line. The file is opened on the first Write,
// not by the constructor. Standard output cannot be rolled back.
type sink struct {
	log   zerolog.Logger
	src   cdc.SourceInfo
	now   func() time.Time
	path  string // empty for standard output
	fsync bool
	open  func(path string, syncDir bool) (output, int64, error)

	w      io.Writer
	out    output    // nil for standard output
	size   int64     // length of the file after the last successful Write
	bufs   [2][]byte // the batch's buffers (two alternate in pieces)
	enc    cdc.Envelopes
	closed bool
}

func newFile(path string, fsync bool, env config.Env) *sink {
	return &sink{log: env.Log, src: env.Source, now: time.Now, path: path, fsync: fsync, open: openFile}
}

func newStdout(env config.Env) *sink {
	w := env.Stdout
	if w == nil {
		w = os.Stdout
	}
	return &sink{log: env.Log, src: env.Source, now: time.Now, w: w}
}

// Write appends the events. With fsync on, it returns nil only once they
// are on disk. On error none of the batch remains in the file.
func (s *sink) Write(ctx context.Context, events []cdc.Event) error {
	if s.closed {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	if s.w == nil {
		out, size, err := s.open(s.path, s.fsync)
		if err != nil {
			return err
		}
		s.w, s.out, s.size = out, out, size
		s.log.Info().Str("path", s.path).Int64("size", size).Msg("events file opened")
	}

	// Standard output and an unsynced file take the batch in one write;
	// a synced file in pieces (see pieceBytes).
	now := s.now()
	var written int64
	var err error
	if s.out != nil && s.fsync {
		written, err = s.writePieces(events, now)
	} else {
		buf := s.bufs[0][:0]
		for i := range events {
			buf = s.enc.Append(buf, &events[i], &s.src, now)
			buf = append(buf, '\n')
		}
		_, err = s.w.Write(buf)
		written = int64(len(buf))
		if cap(buf) <= maxKeptBuffer {
			s.bufs[0] = buf
		} else {
			s.bufs[0] = nil
		}
	}
	if s.out == nil {
		return err
	}
	if err == nil && s.fsync {
		err = s.out.Sync()
	}
	if err != nil {
		if terr := s.out.Truncate(s.size); terr != nil {
			err = errors.Join(err, fmt.Errorf("roll back %s to %d bytes: %w", s.path, s.size, terr))
		}
		return err
	}
	if s.fsync {
		dropCache(s.out, s.size, written)
	}
	s.size += written
	return nil
}

// MaxBatch is how many events a Write takes at most.
func (s *sink) MaxBatch() int { return maxBatch }

// ForgetsEvents reports that Write keeps nothing of its events once it
// returns (cdc.Forgetful): it encodes them, and keeps only column names,
// which are strings.
func (s *sink) ForgetsEvents() bool { return true }

// Close closes the file; it does not close standard output. Everything a
// successful Write returned for is already written, so there is nothing
// to flush.
func (s *sink) Close(context.Context) error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.out == nil {
		return nil
	}
	return s.out.Close()
}

// openFile opens path for appending, creating it with mode 0644, and
// returns its current size. A torn last line (a process killed during a
// write) is cut off: its events were not acknowledged and come again.
// With syncDir, it also syncs the directory so that a newly created file
// survives a crash.
func openFile(path string, syncDir bool) (output, int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, 0, err
	}
	info, err := f.Stat()
	size := int64(0)
	if err == nil && !info.Mode().IsRegular() {
		err = fmt.Errorf(`%s is not a regular file (for standard output use path "-" or type stdout)`, path)
	}
	if err == nil {
		size, err = cutTornLine(f, info.Size())
	}
	if err == nil && syncDir {
		err = syncDirectory(filepath.Dir(path))
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, size, nil
}

// cutTornLine truncates f, of size bytes, after its last newline, and
// returns its new size.
func cutTornLine(f *os.File, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	end := size
	for end > 0 {
		n := min(end, int64(len(buf)))
		if _, err := f.ReadAt(buf[:n], end-n); err != nil {
			return 0, fmt.Errorf("read the end of %s: %w", f.Name(), err)
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			end = end - n + int64(i) + 1
			break
		}
		end -= n
	}
	if end == size {
		return size, nil
	}
	if err := f.Truncate(end); err != nil {
		return 0, fmt.Errorf("cut the torn last line of %s: %w", f.Name(), err)
	}
	return end, nil
}

func syncDirectory(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}
