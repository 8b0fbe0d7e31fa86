package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
)

// RunnerConfig tunes a Runner; zero values take the defaults.
type RunnerConfig struct {
	// Owner names this process in cdcd.jobs.owner; default host:pid.
	// Each claim adds a suffix of its own ("#" and 8 hex digits), which
	// fences that run: a job paused and resumed, or taken again after a
	// lapse, while an earlier run of it in this process still holds a
	// page, is no longer that run's.
	Owner string
	// Lease is how long a job stays this runner's without a renewal
	// (default 30s); it is renewed every third of it. A job whose runner
	// died is taken again once its lease lapsed.
	Lease time.Duration
	// Poll is how often the runner looks for jobs without being told of
	// one (default a third of Lease): a job whose lease lapsed, or one
	// queued while the runner was not listening. A job that becomes
	// queued is announced (LISTEN cdcd_jobs) and taken at once, as Wake
	// does. A kind whose handler is not ready (Readier) is looked for
	// every second at least.
	Poll time.Duration
	// Concurrency bounds the jobs this runner runs at once (default 2).
	Concurrency int
	// RetryMin is the first wait before a job that failed on a lost
	// connection runs again from its cursor (default 1s); it doubles
	// with each such failure in a row without progress, up to
	// retryLimit runs.
	RetryMin time.Duration
}

// retryLimit bounds the runs in a row without progress of a job that
// fails on a lost connection: with RetryMin 1s, the last comes about a
// minute after the first failure, time for a Postgres restart or a
// failover.
const retryLimit = 7

// Runner claims jobs and runs them through the handler of their kind.
type Runner struct {
	s        *Store
	cfg      RunnerConfig
	log      zerolog.Logger
	handlers map[string]Handler
	wake     chan struct{}
	running  *prometheus.GaugeVec
	finished *prometheus.CounterVec
	retries  *prometheus.CounterVec
}

// NewRunner returns a Runner on s; register handlers with Handle, then Run.
func NewRunner(s *Store, cfg RunnerConfig, log zerolog.Logger, reg prometheus.Registerer) *Runner {
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = host + ":" + strconv.Itoa(os.Getpid())
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = cfg.Lease / 3
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 2
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Second
	}
	r := &Runner{
		s: s, cfg: cfg, log: log.With().Str("component", "jobs").Logger(),
		handlers: make(map[string]Handler), wake: make(chan struct{}, 1),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cdcd_jobs_running", Help: "Jobs this process runs now, by kind.",
		}, []string{"kind"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcd_jobs_finished_total", Help: "Job runs this process ended, by kind and outcome (done, failed, stopped, lost).",
		}, []string{"kind", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcd_jobs_retries_total", Help: "Job runs started again from their cursor after failing on a lost connection, by kind.",
		}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(r.running, r.finished, r.retries)
	}
	return r
}

// Handle registers the handler of kind. A second handler for one kind
// panics: a programming error.
func (r *Runner) Handle(kind string, h Handler) {
	if _, dup := r.handlers[kind]; dup {
		panic("jobs: two handlers for kind " + kind)
	}
	r.handlers[kind] = h
}

// Kinds returns the kinds this runner handles, sorted.
func (r *Runner) Kinds() []string {
	kinds := make([]string, 0, len(r.handlers))
	for k := range r.handlers {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return kinds
}

// Wake makes the runner look for jobs now (one was just created).
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run claims and runs jobs until ctx ends, then waits for the running
// ones to stop and hands them back queued. It returns nil on a clean stop.
func (r *Runner) Run(ctx context.Context) error {
	kinds := r.Kinds()
	if len(kinds) == 0 {
		<-ctx.Done()
		return nil
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	free := make(chan struct{}, r.cfg.Concurrency)
	for range r.cfg.Concurrency {
		free <- struct{}{}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.listen(ctx, kinds)
	}()
	poll := time.NewTimer(r.cfg.Poll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-free:
		}
		var job *Job
		var err error
		ready := r.readyKinds(kinds)
		owner := r.cfg.Owner + "#" + runID()
		if len(ready) > 0 {
			job, err = r.s.claimScoped(ctx, owner, r.scope(ready), r.cfg.Lease)
		}
		if err != nil && ctx.Err() == nil {
			r.log.Warn().Err(err).Msg("claim a job")
		}
		if job == nil {
			free <- struct{}{}
			wait := r.cfg.Poll
			if len(ready) < len(kinds) {
				wait = min(wait, time.Second) // a handler not ready yet
			}
			poll.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-poll.C:
			case <-r.wake:
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.run(ctx, job, owner)
			free <- struct{}{}
			r.Wake() // another job may be waiting
		}()
	}
}

// Readier is implemented by a Handler that can run its jobs only at some
// times (a backfill only in the process whose reader streams): its kind is
// claimed only while Ready returns true.
type Readier interface {
	Ready() bool
}

// Scoper is implemented by a Handler that runs the jobs of some
// pipelines only (an import, those of this process's inbound pipelines
// that list records): a job of its kind for another pipeline is left
// queued for a process whose handler has it (another deployment on the
// database, or a cdcd started with a newer config), instead of being
// claimed and failed here.
type Scoper interface {
	Pipelines() []string
}

// scope is what the runner may claim of the ready kinds.
func (r *Runner) scope(ready []string) scope {
	var sc scope
	for _, k := range ready {
		sp, ok := r.handlers[k].(Scoper)
		if !ok {
			sc.kinds = append(sc.kinds, k)
			continue
		}
		for _, p := range sp.Pipelines() {
			sc.pairs.kinds = append(sc.pairs.kinds, k)
			sc.pairs.pipelines = append(sc.pairs.pipelines, p)
		}
	}
	return sc
}

func (r *Runner) readyKinds(kinds []string) []string {
	out := kinds[:0:0]
	for _, k := range kinds {
		if rd, ok := r.handlers[k].(Readier); ok && !rd.Ready() {
			continue
		}
		out = append(out, k)
	}
	return out
}

// runID returns a new suffix for this process's owner name.
func runID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// run runs one job claimed as owner and records how it ended.
func (r *Runner) run(ctx context.Context, job *Job, owner string) {
	log := r.log.With().Int64("job", job.ID).Str("kind", job.Kind).Str("pipeline", job.Pipeline).Logger()
	r.running.WithLabelValues(job.Kind).Inc()
	defer r.running.WithLabelValues(job.Kind).Dec()
	log.Info().Int64("processed", job.Processed).Bool("resumed", job.Cursor != nil).Msg("job started")

	jctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		r.keepLease(jctx, cancel, job.ID, owner)
	}()
	err := r.runRetrying(jctx, job, owner, log)
	lost := errors.Is(context.Cause(jctx), ErrLost) || errors.Is(err, ErrLost)
	cancel(nil)
	<-renewed

	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer fcancel()
	var result string
	switch {
	case lost:
		result = "lost"
		log.Info().Msg("job stopped: cancelled, paused or taken by another cdcd")
	case ctx.Err() != nil:
		result = "stopped"
		if rerr := r.s.release(fctx, job.ID, owner); rerr != nil && !errors.Is(rerr, ErrLost) {
			log.Warn().Err(rerr).Msg("job not handed back; it is taken again once its lease lapses")
		}
		log.Info().Msg("job handed back for the next start")
	default:
		result = "done"
		if err != nil {
			result = "failed"
		}
		if ferr := r.s.finish(fctx, job.ID, owner, err); ferr != nil {
			result = "lost"
			log.Warn().Err(ferr).Msg("job end not recorded")
			break
		}
		if err != nil {
			log.Warn().Err(err).Msg("job failed")
		} else {
			log.Info().Msg("job done")
		}
	}
	r.finished.WithLabelValues(job.Kind, result).Inc()
}

// Retrier is implemented by a Handler whose jobs may run again from their
// cursor when a run failed on a lost connection (a backfill, whose
// connections to Postgres a restart cuts), where its own retries do not
// cover it. An import retries each page itself and is not one.
type Retrier interface {
	RetriesLostConnections() bool
}

// runRetrying runs the job's handler and, for a Retrier, runs it again
// from the job's saved cursor when it failed on a lost connection
// (Postgres restarted, a failover, a network cut): a long backfill goes
// on by itself instead of waiting for `cdcd jobs resume`. Other failures,
// and retryLimit runs in a row that failed so without progress, end it.
func (r *Runner) runRetrying(ctx context.Context, job *Job, owner string, log zerolog.Logger) error {
	rt, ok := r.handlers[job.Kind].(Retrier)
	retries := ok && rt.RetriesLostConnections()
	wait := r.cfg.RetryMin
	for tries := 1; ; tries++ {
		err := runHandler(ctx, r.handlers[job.Kind], job, &progress{s: r.s, id: job.ID, owner: owner, last: time.Now()}, log)
		if err == nil || ctx.Err() != nil || !retries || !connectionLost(err) || tries == retryLimit {
			return err
		}
		log.Warn().Err(err).Float64("retry_in_seconds", wait.Seconds()).Int("run", tries).Msg("job lost its connection; running it again from its cursor")
		r.retries.WithLabelValues(job.Kind).Inc()
		// Wait, then read the job again for its cursor; a read cut as well
		// counts as a run without progress.
		var fresh *Job
		for {
			if !cdc.Sleep(ctx, wait) {
				return err
			}
			wait = min(2*wait, 30*time.Second)
			var gerr error
			if fresh, gerr = r.s.Get(ctx, job.ID); gerr == nil {
				break
			}
			if !connectionLost(gerr) || tries == retryLimit {
				return err
			}
			tries++
		}
		if fresh.Owner != owner || fresh.Status != Running {
			return ErrLost
		}
		if fresh.Processed > job.Processed {
			tries, wait = 0, r.cfg.RetryMin
		}
		job = fresh
	}
}

// connectionLost reports whether err came of a connection lost or
// refused, or a server shutting down, rather than of what was asked:
// asking again later may succeed.
func connectionLost(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// 08: connection exception; 57P01-57P03: the server shuts down
		// or starts.
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) || pgconn.SafeToRetry(err)
}

// runHandler runs h, turning a panic into the job's failure: one job's
// bug does not stop cdcd and every pipeline with it, nor come back at
// each start. The stack goes to the log.
func runHandler(ctx context.Context, h Handler, job *Job, p Progress, log zerolog.Logger) (err error) {
	defer func() {
		if v := recover(); v != nil {
			log.Error().Str("panic", fmt.Sprint(v)).Str("stack", string(debug.Stack())).Msg("job handler panicked; the job is failed")
			err = fmt.Errorf("internal error: %v", v)
		}
	}()
	return h.Run(ctx, job, p)
}

// keepLease renews the job's lease every third of it until ctx ends; it
// cancels the job when the lease is lost or could not be renewed in time.
func (r *Runner) keepLease(ctx context.Context, cancel context.CancelCauseFunc, id int64, owner string) {
	tick := time.NewTicker(r.cfg.Lease / 3)
	defer tick.Stop()
	renewed := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := r.s.renew(ctx, id, owner, r.cfg.Lease)
		switch {
		case err == nil:
			renewed = time.Now()
		case errors.Is(err, ErrLost):
			cancel(ErrLost)
			return
		case ctx.Err() != nil:
			return
		case time.Since(renewed) > r.cfg.Lease*2/3:
			cancel(fmt.Errorf("%w: lease not renewed in time: %w", ErrLost, err))
			return
		default:
			r.log.Warn().Err(err).Int64("job", id).Msg("renew job lease")
		}
	}
}
