package main

import (
	"context"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/deploy/bench/proc"
)

// cpuWatch follows, while a reader runs, the CPU time of the walsender
// serving its slot and of the bench process itself (kfake, mostly).
type cpuWatch struct {
	stop      chan struct{}
	done      chan struct{}
	walsender time.Duration // last sample; read after done
	self      time.Duration // at the start, then the difference
	once      sync.Once
}

// watchCPU samples the walsender of slot every 20 ms until finish is
// called. The last sample may miss up to 20 ms of a walsender that exited.
func (b *bench) watchCPU(ctx context.Context, slot string) (*cpuWatch, error) {
	conn, err := pgx.Connect(ctx, b.pg.URL("postgres"))
	if err != nil {
		return nil, err
	}
	w := &cpuWatch{stop: make(chan struct{}), done: make(chan struct{}), self: selfCPU()}
	go func() {
		defer close(w.done)
		defer conn.Close(context.WithoutCancel(ctx))
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var pid *int32
		for {
			if pid == nil {
				_ = conn.QueryRow(ctx, "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&pid)
			}
			if pid != nil {
				if d, err := proc.CPUTime(int(*pid)); err == nil {
					w.walsender = d
				}
			}
			select {
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return w, nil
}

// finish stops sampling and returns the walsender's CPU time and the bench
// process's since the watch began. Later calls return the same.
func (w *cpuWatch) finish() (walsender, self time.Duration) {
	w.once.Do(func() {
		close(w.stop)
		<-w.done
		w.self = selfCPU() - w.self
	})
	return w.walsender, w.self
}

// selfCPU is the bench process's user plus system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
