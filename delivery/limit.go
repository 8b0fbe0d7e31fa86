package delivery

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate is a request budget: Requests per Per.
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

// Limiters holds one token bucket per vendor account, shared by every
// writer (and every pipeline) that uses that account. Vendors count limits
// per account, not per worker.
type Limiters struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// NewLimiters returns an empty set.
func NewLimiters() *Limiters { return &Limiters{m: map[string]*rate.Limiter{}} }

// For returns the account's bucket, creating it with r on first use. The
// bucket allows no burst beyond one window's worth of requests.
func (l *Limiters) For(account string, r Rate) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if lim, ok := l.m[account]; ok {
		return lim
	}
	lim := rate.NewLimiter(rate.Limit(float64(r.Requests)/r.Per.Seconds()), r.Requests)
	l.m[account] = lim
	return lim
}
