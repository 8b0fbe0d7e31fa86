package pgwal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// errGoingAway ends a session whose server is shutting down.
var errGoingAway = errors.New("the database is shutting down")

// A server shutting down ends every ordinary session first, then refuses
// new ones (57P03), and only then lets its walsenders finish: a walsender
// sends what is left and waits until the client confirms all it sent
// (walsender.c, WalSndDone) before it exits and the shutdown completes.
// cdcd confirms only what the bus acknowledged, which may take long or
// need this very database, so it lets go of the stream instead, without
// confirming anything more, and resumes from the slot's confirmed
// position once the server is back.

// pings remembers when the last keepalives that asked for a reply came.
// A streaming walsender asks every wal_sender_timeout/2; one finishing a
// shutdown asks again as soon as it has the previous answer. That burst
// tells a shutdown even when the monitor cannot connect.
type pings struct {
	at [16]time.Time
	n  int
}

// burst notes a keepalive that asked for a reply at now and reports
// whether the last 16 came within a second.
func (p *pings) burst(now time.Time) bool {
	p.at[p.n%len(p.at)] = now
	p.n++
	return p.n >= len(p.at) && now.Sub(p.at[p.n%len(p.at)]) < time.Second
}

// shuttingDown reports whether err says the server refuses connections
// because it is shutting down (or not yet up).
func shuttingDown(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "57P03"
}

// letGo ends the current session at once, without draining.
func (r *Reader) letGo(cause error) {
	if abort := r.abort.Load(); abort != nil {
		(*abort)(fmt.Errorf("%w: %v", errGoingAway, cause))
	}
}

// watch waits d on the monitor's connection, returning early when the
// server ends it: the first sign of a shutdown. It returns false when ctx
// ended.
func watch(ctx context.Context, conn *pgconn.PgConn, d time.Duration) bool {
	if conn == nil || conn.IsClosed() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	_ = conn.WaitForNotification(wctx) // nil or a timeout, unless the session ended
	return ctx.Err() == nil
}
