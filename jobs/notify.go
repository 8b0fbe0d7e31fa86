package jobs

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// channel is where cdcd.jobs announces a job that became queued (a
// trigger, migration 0100), its kind as the payload.
const channel = "cdcd_jobs"

// listen wakes the runner whenever a job of one of kinds is queued, on a
// connection of its own, until ctx ends. A lost connection is opened
// again after a pause; meanwhile, and for jobs whose lease lapsed (no one
// announces those), the runner's poll finds them.
func (r *Runner) listen(ctx context.Context, kinds []string) {
	pause := time.Second
	for ctx.Err() == nil {
		began := time.Now()
		err := r.listenOnce(ctx, kinds)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > time.Minute {
			pause = time.Second
		}
		r.log.Warn().Err(err).Float64("retry_in_seconds", pause.Seconds()).Msg("listen for queued jobs; polling meanwhile")
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 30*time.Second)
	}
}

func (r *Runner) listenOnce(ctx context.Context, kinds []string) error {
	conn, err := pgx.ConnectConfig(ctx, r.s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return err
	}
	r.Wake() // a job queued before LISTEN took effect
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		for _, k := range kinds {
			if n.Payload == k {
				r.Wake()
				break
			}
		}
	}
}
