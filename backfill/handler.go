package backfill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc/pgwal"
	"github.com/cdcd-dev/cdcd/jobs"
)

// Kinds of the jobs a Handler runs: a backfill fills one or more pipelines
// of a table; an export is a backfill of one pipeline to a system (records
// are created, or updated where a link exists).
const (
	KindBackfill = "backfill"
	KindExport   = "export"
)

// Params are a backfill's or export's parameters (cdcd.jobs.params).
type Params struct {
	// Table is the table read, schema.table.
	Table string `json:"table"`
	// Pipelines receive the rows read: one for an export or a backfill of a
	// pipeline, every pipeline of the table otherwise.
	Pipelines []string `json:"pipelines"`
	// Where, when set, is an SQL condition on the table's rows.
	Where string `json:"where,omitempty"`
	// ChunkSize overrides the handler's rows per chunk.
	ChunkSize int `json:"chunk_size,omitempty"`
}

// Cursor is a backfill's progress: the last key of the last durable chunk
// as text values, in primary-key order.
type Cursor struct {
	After []string `json:"after"`
}

// Handler runs backfill and export jobs (jobs.Handler). It reads chunks in
// key order on a connection of its own and merges them into the local
// capture stream with the Merger the stream uses, so it runs only in the
// process that streams (Ready).
type Handler struct {
	// URL is the application database's.
	URL    string
	Merger *Merger
	// Streaming reports whether this process's reader streams from the
	// slot; nil means it always does.
	Streaming func() bool
	// ChunkSize is the rows per chunk (default 10000), fewer when rows
	// are wide (chunkBytes).
	ChunkSize int
	// WatermarkTimeout bounds the wait for a chunk's high watermark to come
	// through the stream (default 1m); a chunk that times out is read again.
	WatermarkTimeout time.Duration
	// Reuse, if set, reports whether every sink the rows of the pipelines
	// go to forgets them once delivered (cdc.Forgetful, LocalBus.Forgets):
	// a chunk's memory is then reused by the chunks read after it is
	// delivered.
	Reuse func(pipelines []string) bool
	// Reused, if set, counts chunks whose memory was handed to the reads
	// after them (Reuse).
	Reused prometheus.Counter
	// Rereads, if set, counts chunks read again because their snapshot
	// missed a transaction the stream passed before their low watermark
	// (see Merger).
	Rereads prometheus.Counter
	Log     zerolog.Logger
}

// Ready reports whether this process may take backfill jobs now.
func (h *Handler) Ready() bool { return h.Streaming == nil || h.Streaming() }

// Run reads the job's table from its cursor to the end, chunk by chunk.
func (h *Handler) Run(ctx context.Context, job *jobs.Job, p jobs.Progress) error {
	var params Params
	if err := json.Unmarshal(job.Params, &params); err != nil {
		return fmt.Errorf("job %d params: %w", job.ID, err)
	}
	t, err := pgwal.ParseTable(params.Table)
	if err != nil {
		return fmt.Errorf("job %d params: %w", job.ID, err)
	}
	if len(params.Pipelines) == 0 {
		return fmt.Errorf("job %d params: no pipeline to fill", job.ID)
	}
	var cur Cursor
	if job.Cursor != nil {
		if err := json.Unmarshal(job.Cursor, &cur); err != nil {
			return fmt.Errorf("job %d cursor: %w", job.ID, err)
		}
	}
	size := params.ChunkSize
	if size <= 0 {
		size = h.ChunkSize
	}
	if size <= 0 {
		size = 10000
	}
	wait := h.WatermarkTimeout
	if wait <= 0 {
		wait = time.Minute
	}
	defer h.Merger.Begin()()
	conn, err := pgwal.Connect(ctx, h.URL)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	tb, err := describe(ctx, conn, t)
	if err != nil {
		return err
	}
	if job.Cursor == nil || job.Total == nil {
		total, err := estimate(ctx, conn, tb, params.Where)
		if err != nil {
			return err
		}
		if err := p.SetTotal(ctx, total); err != nil {
			return err
		}
	}
	// High watermarks are written on a connection of their own, ahead of
	// delivery (see ahead).
	wm, err := pgwal.Connect(ctx, h.URL)
	if err != nil {
		return err
	}
	defer func() { _ = wm.Close(context.WithoutCancel(ctx)) }()
	log := h.Log.With().Str("component", "backfill").Int64("job", job.ID).Str("table", t.String()).Logger()
	run := make([]byte, 4)
	_, _ = rand.Read(run)
	seq := 0
	var sp *spare
	if h.Reuse != nil && h.Reuse(params.Pipelines) {
		sp = &spare{}
	}
	read := func(after []string, limit int) (*chunkRead, error) {
		seq++
		id := fmt.Sprintf("%d.%s.%d", job.ID, hex.EncodeToString(run), seq)
		return h.read(ctx, conn, tb, id, after, params, limit, sp)
	}
	var a *ahead
	defer func() {
		if a != nil {
			a.stop()
		}
	}()
	// restart drops the chunks read ahead and reads again from the cursor.
	restart := func() {
		if a != nil {
			a.stop()
			a = nil
		}
	}
	var stale time.Time // when the chunk first came back stale, zero if not
	pause := 10 * time.Millisecond
	for {
		if err := h.waitStreaming(ctx); err != nil {
			return err
		}
		if a == nil {
			a = h.startAhead(ctx, wm, read, cur.After, size)
		}
		next, ok := a.next(ctx)
		if !ok {
			return nil
		}
		c, err := next.r, next.err
		if err != nil {
			return err
		}
		if c.n == 0 {
			h.Merger.closeChunk(c.c)
			return nil
		}
		err = h.deliver(ctx, c, wait)
		if errors.Is(err, errStaleRead) {
			restart()
			if h.Rereads != nil {
				h.Rereads.Inc()
			}
			if stale.IsZero() {
				stale = time.Now()
			} else if time.Since(stale) > wait {
				return fmt.Errorf("read a chunk of %s: for %s, a transaction the stream passed stayed invisible to new snapshots (a synchronous standby not answering?)", t, wait)
			}
			log.Debug().Str("chunk", c.c.id).Dur("pause", pause).Msg("the chunk's snapshot missed a transaction streamed before its low watermark; reading the chunk again")
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(pause):
			}
			pause = min(2*pause, time.Second)
			continue
		}
		stale, pause = time.Time{}, 10*time.Millisecond
		if errors.Is(err, errWatermarkLate) {
			log.Warn().Str("chunk", c.c.id).Msg("watermark did not come through the stream in time; reading the chunk again")
			restart()
			continue
		}
		if errors.Is(err, errReplayed) {
			log.Info().Str("chunk", c.c.id).Msg("the stream resumed from before the chunk's high watermark, its rows perhaps lost; reading the chunk again")
			restart()
			continue
		}
		if err != nil {
			return err
		}
		saved := time.Now()
		cur.After = c.last
		if err := p.Save(ctx, cur, int64(c.n)); err != nil {
			return err
		}
		a.savedOne(c.at.durable.Sub(c.at.emitted))
		if sp != nil {
			// Every sink delivered the rows and forgets them.
			sp.put(c.mem)
			if h.Reused != nil {
				h.Reused.Inc()
			}
		}
		at := &c.at
		log.Debug().Str("chunk", c.c.id).Int("rows", c.n).Float64("read_seconds", at.read.Sub(at.began).Seconds()).
			Float64("high_seconds", at.high.Sub(at.asked).Seconds()).
			Float64("held_seconds", at.released.Sub(at.high).Seconds()).
			Float64("stream_seconds", at.emitted.Sub(at.released).Seconds()).Float64("deliver_seconds", at.durable.Sub(at.emitted).Seconds()).
			Float64("save_seconds", time.Since(saved).Seconds()).Msg("chunk durable")
		if !c.more {
			return nil
		}
	}
}

// chunkBytes bounds the values a chunk holds (one row more at most): a
// chunk of wide rows is cut to fewer rows than chunk_size (a chunk is held
// in memory, two at a time, and several times over on its way to the
// sinks). The next chunk asks for no more rows than fit (chunkLimit), so
// that the rows past the budget are seldom read only to be dropped.
const chunkBytes = 8 << 20

// chunkLimit is how many rows to read in the chunk after c: size, or as
// many rows as fit in chunkBytes if c's rows were as wide.
func chunkLimit(size int, c *chunkRead) int {
	if c.n == 0 || c.bytes <= 0 {
		return size
	}
	return max(1, min(size, int(chunkBytes/(c.bytes/int64(c.n)+1))))
}

var (
	errWatermarkLate = errors.New("watermark late")
	errStaleRead     = errors.New("chunk read stale")
	errReplayed      = errors.New("chunk's high watermark streamed again")
)

// chunkRead is a chunk read between its low watermark and its high one,
// not yet written.
type chunkRead struct {
	c     *chunk
	bytes int64    // the rows' values, in bytes
	n     int      // rows read
	last  []string // the last key read
	more  bool     // rows may follow last (see chunkRows)
	mem   chunkMemory
	at    phases
}

// phases are when a chunk began, was read, had its high watermark
// asked for and written, was released, was emitted by the stream and was
// durable: the debug log's figures.
type phases struct{ began, read, asked, high, released, emitted, durable time.Time }

// read writes a chunk's low watermark and reads its rows, handing them to
// the merger.
func (h *Handler) read(ctx context.Context, conn *pgconn.PgConn, tb *table, id string, after []string, params Params, size int, sp *spare) (*chunkRead, error) {
	r := &chunkRead{at: phases{began: time.Now()}}
	r.c = h.Merger.openChunk(id, tb.schema, tb.name, params.Pipelines)
	rows, err := readChunk(ctx, conn, tb, "low "+id, after, params.Where, size, chunkBytes, params.Pipelines, sp)
	if err != nil {
		h.Merger.closeChunk(r.c)
		return nil, err
	}
	h.Merger.fill(r.c, rows.events, rows.snap)
	r.n, r.bytes, r.last, r.more, r.mem, r.at.read = len(rows.events), rows.bytes, rows.last, rows.more, rows.mem, time.Now()
	return r, nil
}

// deliver releases r, whose high watermark is written, and waits until
// the rows the stream emitted at the watermark are durable. The chunk is
// closed when it returns.
func (h *Handler) deliver(ctx context.Context, r *chunkRead, wait time.Duration) error {
	defer h.Merger.closeChunk(r.c)
	h.Merger.release(r.c)
	r.at.released = time.Now()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return errWatermarkLate
	case <-r.c.emittedOnce:
	}
	r.at.emitted = time.Now()
	if r.c.stale {
		return errStaleRead
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-r.c.replayed:
		return errReplayed
	case <-r.c.durable:
	}
	r.at.durable = time.Now()
	if errp := r.c.failed.Load(); errp != nil {
		return fmt.Errorf("deliver chunk: %w", *errp)
	}
	return nil
}

// waitStreaming waits until the local reader streams.
func (h *Handler) waitStreaming(ctx context.Context) error {
	for !h.Ready() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}
