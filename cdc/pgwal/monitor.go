package pgwal

import (
	"context"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/jackc/pgx/v5/pgconn"
)

// lagInterval is how often the lag behind the server's WAL is measured.
const lagInterval = 5 * time.Second

// monitor measures the lag behind the server's WAL and writes the periodic
// heartbeat: a non-transactional logical message, so that the slot moves
// even when the published tables are idle but other databases on the
// server write WAL. It runs on its own ordinary connection and only logs
// its errors: capture does not depend on it. When the server ends that
// connection and refuses a new one because it is shutting down, the
// monitor makes the session let go of the stream (shutdown.go).
func (r *Reader) monitor(ctx context.Context) {
	var conn *pgconn.PgConn
	defer func() {
		if conn != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = conn.Close(cctx)
			cancel()
		}
	}()
	every := min(lagInterval, max(r.cfg.Heartbeat, time.Second))
	var lastBeat time.Time
	for {
		if !watch(ctx, conn, every) {
			return
		}
		if !r.Streaming() {
			continue
		}
		if conn == nil || conn.IsClosed() {
			var err error
			if conn, err = connect(ctx, r.cfg.URL, false); err != nil {
				if shuttingDown(err) {
					r.letGo(err)
				}
				r.log.Debug().Err(err).Msg("monitor connection failed")
				conn = nil
				continue
			}
		}
		sql := "SELECT pg_current_wal_lsn()::text"
		beat := r.cfg.Heartbeat > 0 && time.Since(lastBeat) >= r.cfg.Heartbeat
		if beat {
			sql = "SELECT pg_current_wal_lsn()::text, pg_logical_emit_message(false, 'cdcd.heartbeat', now()::text)"
		}
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		rows, err := query(qctx, conn, sql)
		cancel()
		if err != nil || len(rows) == 0 {
			if ctx.Err() == nil {
				r.log.Debug().Err(err).Msg("heartbeat failed")
			}
			continue
		}
		if beat {
			lastBeat = time.Now()
			r.metrics.heartbeats.Inc()
		}
		if current, err := cdc.ParseLSN(string(rows[0][0])); err == nil {
			lag := int64(current) - int64(r.Confirmed())
			r.metrics.lag.Set(float64(max(lag, 0)))
		}
	}
}
