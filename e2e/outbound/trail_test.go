package outbound

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// trail summarises the pipeline's audit trail in cdcd.sync_events.
type trail struct {
	events   int // distinct events
	settled  int // events whose last row is delivered, skipped or dead_lettered
	once     int // events with exactly one such row
	retried  int // retried rows
	dead     int // dead_lettered rows
	replayed int // replayed rows
}

const terminal = `('delivered', 'skipped', 'dead_lettered')`

func readTrail(ctx context.Context, url string) (trail, error) {
	var tr trail
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return tr, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	err = conn.QueryRow(ctx, `
		WITH e AS (
			SELECT event_id,
			       (array_agg(status ORDER BY id DESC))[1] AS last,
			       count(*) FILTER (WHERE status IN `+terminal+`) AS ends
			FROM cdcd.sync_events WHERE pipeline = $1 GROUP BY event_id)
		SELECT (SELECT count(*) FROM e),
		       (SELECT count(*) FROM e WHERE last IN `+terminal+`),
		       (SELECT count(*) FROM e WHERE ends = 1),
		       (SELECT count(*) FROM cdcd.sync_events WHERE pipeline = $1 AND status = 'retried'),
		       (SELECT count(*) FROM cdcd.sync_events WHERE pipeline = $1 AND status = 'dead_lettered'),
		       (SELECT count(*) FROM cdcd.sync_events WHERE pipeline = $1 AND status = 'replayed')`,
		pipelineName).Scan(&tr.events, &tr.settled, &tr.once, &tr.retried, &tr.dead, &tr.replayed)
	return tr, err
}

// waitSettled polls until the trail holds events settled events and
// returns it.
func waitSettled(t *testing.T, url string, events int, timeout time.Duration) trail {
	t.Helper()
	var tr trail
	poll(t, timeout, 100*time.Millisecond, func() error {
		var err error
		if tr, err = readTrail(context.Background(), url); err != nil {
			t.Fatalf("read the audit trail: %v", err)
		}
		if tr.settled < events {
			return fmt.Errorf("%d of %d events settled in the audit trail", tr.settled, events)
		}
		return nil
	})
	return tr
}
