package transform

import (
	"context"
	"fmt"
	"slices"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
)

// Select wraps sink, a system that writes changes as they are (a file,
// standard output), so that it gets only the changes the pipeline of m
// delivers (its ops and filter, never a truncate), each with only the
// columns the pipeline sees (its columns rule; key columns always). A
// change whose filter cannot be evaluated (a permanent error) is logged
// and left out, as a dead letter would be; a lookup that fails fails the
// Write, to be retried.
func Select(sink cdc.Sink, m *Mapper, log zerolog.Logger) cdc.Sink {
	return &selected{sink: sink, m: m, log: log}
}

type selected struct {
	sink cdc.Sink
	m    *Mapper
	log  zerolog.Logger
	buf  []cdc.Event // Write is not called concurrently
}

func (s *selected) Write(ctx context.Context, events []cdc.Event) error {
	// Until a change is left out, a pipeline without a columns rule hands
	// the batch to the sink as it came: a backfill's chunk is 10,000
	// events of 300 bytes, not copied.
	copying := len(s.m.cols.Allow) > 0 || len(s.m.cols.Deny) > 0
	var out []cdc.Event
	if copying {
		out = s.buf[:0]
	}
	for i := range events {
		e := &events[i]
		ok, err := s.m.Selects(ctx, e)
		switch {
		case cdc.IsPermanent(err):
			s.log.Error().Err(err).Str("event_id", e.ID()).Str("table", e.Schema+"."+e.Table).Msg("change left out: the pipeline cannot select it")
			ok = false
		case err != nil:
			s.release(out, copying)
			return fmt.Errorf("select changes: %w", err)
		}
		switch {
		case !copying && !ok:
			out, copying = append(s.buf[:0], events[:i]...), true
		case copying && ok:
			out = append(out, s.m.visible(*e))
		}
	}
	if !copying {
		out = events
	}
	if len(out) == 0 {
		s.release(out, copying)
		return nil
	}
	err := s.sink.Write(ctx, out)
	s.release(out, copying)
	return err
}

// release keeps out, when it is a copy, for the next Write, holding no
// event alive.
func (s *selected) release(out []cdc.Event, copied bool) {
	if copied {
		clear(out)
		s.buf = out[:0]
	}
}

func (s *selected) Close(ctx context.Context) error { return s.sink.Close(ctx) }

// MaxBatch is the wrapped sink's (cdc.Batcher), 0 if it has none.
func (s *selected) MaxBatch() int {
	if b, ok := s.sink.(cdc.Batcher); ok {
		return b.MaxBatch()
	}
	return 0
}

// ForgetsEvents is the wrapped sink's (cdc.Forgetful): what Write copies
// it clears once the sink returns.
func (s *selected) ForgetsEvents() bool { return cdc.Forgets(s.sink) }

// visible returns e with only the columns the pipeline sees in Before,
// After and Unchanged.
func (m *Mapper) visible(e cdc.Event) cdc.Event {
	if len(m.cols.Allow) == 0 && len(m.cols.Deny) == 0 {
		return e
	}
	sees := func(col string) bool {
		_, isKey := e.Key.Get(col)
		return isKey || m.cols.Visible(col)
	}
	row := func(r cdc.Row) cdc.Row {
		if r == nil {
			return nil
		}
		return slices.DeleteFunc(slices.Clone(r), func(f cdc.Field) bool { return !sees(f.Name) })
	}
	e.Before, e.After = row(e.Before), row(e.After)
	if e.Unchanged != nil {
		e.Unchanged = slices.DeleteFunc(slices.Clone(e.Unchanged), func(c string) bool { return !sees(c) })
	}
	return e
}
