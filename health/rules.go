package health

import (
	"fmt"
	"time"

	"github.com/cdcd-dev/cdcd/config"
)

// pipelineTrack follows one pipeline across evaluations.
type pipelineTrack struct {
	system             string
	rules              config.PipelineRules
	delivered, errors  history
	backlog            history
	failingSince       time.Time // zero while writes succeed
	stalledSince       time.Time // zero while nothing waits or records move
	activity           string
	seen               bool
	lastProgressAmount float64
}

// observe takes in the pipeline's sample and judges it.
func (t *pipelineTrack) observe(p *pipelineSample, deadLetters int64, now time.Time) ([]finding, map[string]float64) {
	moved := t.seen && p.delivered > t.delivered.last.v
	failed := t.seen && p.errors > t.errors.last.v
	switch {
	case moved:
		t.failingSince = time.Time{}
		t.activity = "delivering"
	case failed || (!t.failingSince.IsZero() && p.backlog > 0):
		if t.failingSince.IsZero() {
			t.failingSince = now
		}
		t.activity = "retrying"
	default:
		t.failingSince = time.Time{}
		t.activity = "idle"
	}
	if p.backlog > 0 && !moved {
		if t.stalledSince.IsZero() {
			t.stalledSince = now
		}
		if t.activity == "idle" {
			t.activity = "waiting"
		}
	} else {
		t.stalledSince = time.Time{}
	}
	t.seen = true
	t.delivered.add(now, p.delivered)
	t.errors.add(now, p.errors)
	t.backlog.add(now, p.backlog)

	delivered, errs := t.delivered.delta(now), t.errors.delta(now)
	attempts := delivered + errs
	rate := 0.0
	if attempts > 0 {
		rate = errs / attempts
	}
	failing, stalled := since(t.failingSince, now), since(t.stalledSince, now)
	var oldest time.Duration
	if p.oldestPending > 0 {
		oldest = max(0, now.Sub(time.Unix(0, int64(p.oldestPending*1e9))).Round(time.Second))
	}
	fig := map[string]float64{
		"delivered_total":            p.delivered,
		"delivered_1h":               delivered,
		"errors_1h":                  errs,
		"error_rate_1h":              rate,
		"backlog":                    p.backlog,
		"failing_seconds":            failing.Seconds(),
		"stalled_seconds":            stalled.Seconds(),
		"oldest_undelivered_seconds": oldest.Seconds(),
		"dead_letters":               float64(deadLetters),
		"conflicts_open":             p.conflictsOpen,
		"conflicts_escalated":        p.escalated,
	}
	r := t.rules
	fs := []finding{
		{level(r.Failing, failing), fmt.Sprintf("%s answered nothing but errors for %s", t.system, failing)},
		{level(r.Stalled, stalled), fmt.Sprintf("%.0f records waiting, none delivered for %s", p.backlog, stalled)},
		{level(r.OldestUndelivered, oldest), fmt.Sprintf("the oldest change waiting committed %s ago", oldest)},
		{level(r.Backlog, int64(p.backlog)), fmt.Sprintf("%.0f records waiting", p.backlog)},
		{level(r.DeadLetters, deadLetters), fmt.Sprintf("%d dead letters waiting (cdcd dlq list)", deadLetters)},
		{level(r.ConflictsOpen, int64(p.conflictsOpen)), fmt.Sprintf("%.0f conflicts open", p.conflictsOpen)},
		{level(r.ConflictsEscalated, int64(p.escalated)), fmt.Sprintf("%.0f conflicts escalated, waiting for a decision (cdcd conflicts list)", p.escalated)},
	}
	if e := r.ErrorRate; e != nil && attempts >= float64(max(1, e.MinAttempts)) {
		fs = append(fs, finding{level(&e.Levels, rate), fmt.Sprintf("%.0f%% of writes failed in the last hour (%.0f of %.0f)", 100*rate, errs, attempts)})
	}
	return fs, fig
}

// series are the pipeline's plots: per minute over the last hour.
func (t *pipelineTrack) series() *Series {
	d, e := t.delivered.perMinute(), t.errors.perMinute()
	rate := make([]float64, len(d))
	for i := range d {
		if i < len(e) && d[i]+e[i] > 0 {
			rate[i] = e[i] / (d[i] + e[i])
		}
	}
	return &Series{Delivered: d, ErrorRate: rate, Backlog: t.backlog.values()}
}

// captureTrack follows the reading of the replication slot.
type captureTrack struct {
	lag         history
	confirmed   float64
	behindSince time.Time // zero while the confirmed position moves
}

func (c *captureTrack) observe(s *sample, rules config.CaptureRules, now time.Time) ([]finding, map[string]float64) {
	if s.lagBytes > 0 && s.confirmedLSN == c.confirmed {
		if c.behindSince.IsZero() {
			c.behindSince = now
		}
	} else {
		c.behindSince = time.Time{}
	}
	c.confirmed = s.confirmedLSN
	c.lag.add(now, s.lagBytes)
	behind := since(c.behindSince, now)
	fig := map[string]float64{"lag_bytes": s.lagBytes, "lag_seconds": behind.Seconds(), "confirmed_lsn": s.confirmedLSN}
	return []finding{
		{level(rules.LagBytes, int64(s.lagBytes)), fmt.Sprintf("capture is %s behind the server's WAL", bytesText(s.lagBytes))},
		{level(rules.LagSeconds, behind), fmt.Sprintf("the confirmed position has not moved for %s while %s behind", behind, bytesText(s.lagBytes))},
	}, fig
}

func since(t, now time.Time) time.Duration {
	if t.IsZero() {
		return 0
	}
	return now.Sub(t).Round(time.Second)
}

func bytesText(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f bytes", b)
}

// LSNText writes an LSN held in a float64 gauge as Postgres does (X/Y).
func LSNText(v float64) string {
	n := uint64(v)
	return fmt.Sprintf("%X/%X", n>>32, uint32(n))
}
