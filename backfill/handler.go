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
	// ChunkSize is the rows per chunk (default 2000).
	ChunkSize int
	// WatermarkTimeout bounds the wait for a chunk's high watermark to come
	// through the stream (default 1m); a chunk that times out is read again.
	WatermarkTimeout time.Duration
	Log              zerolog.Logger
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
		size = 2000
	}
	wait := h.WatermarkTimeout
	if wait <= 0 {
		wait = time.Minute
	}
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
	log := h.Log.With().Str("component", "backfill").Int64("job", job.ID).Str("table", t.String()).Logger()
	run := make([]byte, 4)
	_, _ = rand.Read(run)
	for seq := 1; ; seq++ {
		if err := h.waitStreaming(ctx); err != nil {
			return err
		}
		id := fmt.Sprintf("%d.%s.%d", job.ID, hex.EncodeToString(run), seq)
		var at phases
		n, last, err := h.chunk(ctx, conn, tb, id, cur.After, params, size, wait, &at)
		if errors.Is(err, errWatermarkLate) {
			log.Warn().Int("chunk", seq).Msg("watermark did not come through the stream in time; reading the chunk again")
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		cur.After = last
		if err := p.Save(ctx, cur, int64(n)); err != nil {
			return err
		}
		log.Debug().Int("chunk", seq).Int("rows", n).Float64("read_seconds", at.read.Sub(at.began).Seconds()).
			Float64("stream_seconds", at.emitted.Sub(at.read).Seconds()).Float64("deliver_seconds", at.durable.Sub(at.emitted).Seconds()).
			Float64("save_seconds", time.Since(at.durable).Seconds()).Msg("chunk durable")
		if n < size {
			return nil
		}
	}
}

var errWatermarkLate = errors.New("watermark late")

// phases are when a chunk began, was read (between its watermarks), was
// emitted by the stream and was durable: the debug log's figures.
type phases struct{ began, read, emitted, durable time.Time }

// chunk reads one chunk between its watermarks and waits until the rows
// the stream emitted for it are durable. It returns the rows read and the
// last key.
func (h *Handler) chunk(ctx context.Context, conn *pgconn.PgConn, tb *table, id string, after []string, params Params, size int, wait time.Duration, at *phases) (int, []string, error) {
	at.began = time.Now()
	c := h.Merger.openChunk(id, tb.schema, tb.name, params.Pipelines)
	defer h.Merger.closeChunk(c)
	rows, last, err := readChunk(ctx, conn, tb, "low "+id, after, params.Where, size, params.Pipelines)
	if err != nil || len(rows) == 0 {
		return 0, nil, err
	}
	h.Merger.fill(c, rows)
	if err := emit(ctx, conn, "high "+id); err != nil {
		return 0, nil, err
	}
	at.read = time.Now()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	case <-timer.C:
		return 0, nil, errWatermarkLate
	case <-c.emittedOnce:
	}
	at.emitted = time.Now()
	select {
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	case <-c.durable:
	}
	at.durable = time.Now()
	if errp := c.failed.Load(); errp != nil {
		return 0, nil, fmt.Errorf("deliver chunk: %w", *errp)
	}
	return len(rows), last, nil
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
