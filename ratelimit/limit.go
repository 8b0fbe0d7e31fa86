// Package ratelimit holds a vendor account's request budget: at most N
// calls in any rolling window, shared by every writer and pipeline of the
// account, and paused when the vendor says its limit is spent.
package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Rate is a request budget: at most Requests in any window of Per.
type Rate struct {
	Requests int           `yaml:"requests"`
	Per      time.Duration `yaml:"per"`
}

// Validate checks the budget.
func (r Rate) Validate() error {
	if r.Requests <= 0 || r.Per <= 0 {
		return fmt.Errorf("rate: requests and per must be positive")
	}
	return nil
}

// Limiter admits at most Rate.Requests calls in any rolling window of
// Rate.Per, which is how vendors such as HubSpot count. (A token bucket with
// a burst would allow twice that in a window and draw 429s.)
type Limiter struct {
	rate   Rate
	waited atomic.Int64 // nanoseconds callers spent blocked in Wait
	mu     sync.Mutex
	log    []time.Time // start times of the admitted calls in the current window, oldest first
	// pause, when set, holds every call until then (a vendor's 429 said so).
	pause time.Time
}

// safety pads the window for clock differences with the vendor.
const safety = 50 * time.Millisecond

// NewLimiter returns a limiter for r.
func NewLimiter(r Rate) *Limiter { return &Limiter{rate: r} }

// Wait blocks until a call may start, or ctx ends.
func (l *Limiter) Wait(ctx context.Context) error {
	start := time.Now()
	defer func() {
		if d := time.Since(start); d > time.Millisecond {
			l.waited.Add(int64(d))
		}
	}()
	for {
		wait := l.reserve(time.Now())
		if wait <= 0 {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// reserve admits a call at now and returns 0, or returns how long to wait.
func (l *Limiter) reserve(now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.pause) {
		return l.pause.Sub(now)
	}
	window := l.rate.Per + safety
	i := 0
	for i < len(l.log) && now.Sub(l.log[i]) >= window {
		i++
	}
	l.log = l.log[i:]
	if len(l.log) < l.rate.Requests {
		l.log = append(l.log, now)
		return 0
	}
	return window - now.Sub(l.log[0])
}

// Pause holds every call for d: a vendor reported its limit exhausted.
func (l *Limiter) Pause(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until := time.Now().Add(d); until.After(l.pause) {
		l.pause = until
	}
}

// Limiters holds one limiter per vendor account, shared by every writer
// and pipeline that uses the account: vendors count limits per account, not
// per worker. Registered with Prometheus, it reports the time writers spent
// waiting on each account's limit as
// cdcd_sink_rate_limit_wait_seconds_total{account}.
type Limiters struct {
	mu sync.Mutex
	m  map[string]*Limiter
}

// NewLimiters returns an empty set.
func NewLimiters() *Limiters { return &Limiters{m: map[string]*Limiter{}} }

// For returns the account's limiter, creating it with r on first use. A
// nil set gives a limiter of its own to each caller (tests, tools).
func (l *Limiters) For(account string, r Rate) *Limiter {
	if l == nil {
		return NewLimiter(r)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if lim, ok := l.m[account]; ok {
		return lim
	}
	lim := NewLimiter(r)
	l.m[account] = lim
	return lim
}

var waitDesc = prometheus.NewDesc("cdcd_sink_rate_limit_wait_seconds_total",
	"Time writers spent waiting for a vendor account's rate limit.", []string{"account"}, nil)

// Describe implements prometheus.Collector.
func (l *Limiters) Describe(ch chan<- *prometheus.Desc) { ch <- waitDesc }

// Collect implements prometheus.Collector.
func (l *Limiters) Collect(ch chan<- prometheus.Metric) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for account, lim := range l.m {
		ch <- prometheus.MustNewConstMetric(waitDesc, prometheus.CounterValue,
			time.Duration(lim.waited.Load()).Seconds(), account)
	}
}
