package main

import (
	"fmt"
	"io"
	"time"
)

// The verdict takes the samples made while the load was driven. The first
// 20 % are the warm-up: tables fill up to their windows, caches and the
// Go heap to their working size. A series (a table's rows, its size,
// cdcd's RSS) is flat when its highest value in the second half of the
// load is at most growthBound times its highest value from the end of the
// warm-up to the half-way point, plus an absolute slack.
//
// growthBound 1.2: a series that grows at a steady pace from the start
// has a second-half maximum twice its maximum at half-way, and one that
// grows only after the warm-up more still, so any lasting growth fails;
// a steady series still moves by the rows of one prune interval (a tenth
// of the window) and by autovacuum's rhythm, well within 20 %.
//
// The slacks cover what moves by steps rather than in proportion: a small
// table gaining a page of its index or a few rows (256 KiB, 200 rows),
// the Go heap between two garbage collections (8 MiB of RSS), the
// goroutines of connections opened and closed (50), the messages a
// consumer group has yet to take at one moment (a second of the load).
const (
	warmUp        = 0.2
	growthBound   = 1.2
	slackRows     = 200
	slackBytes    = 256 << 10
	slackRSSBytes = 8 << 20
	// A connection's goroutines come and go with the requests in flight.
	slackGoroutines = 50
)

// verdict prints, for every series, its two maxima and whether it is
// flat, and reports whether all are.
func (s *sampler) verdict(w io.Writer, loadEnd time.Duration, lagSlack int64) bool {
	warm, half := time.Duration(float64(loadEnd)*warmUp), loadEnd/2
	flat := true
	fmt.Fprintf(w, "verdict: flat when max(%.0fs–%.0fs] ≤ %.1f × max(%.0fs–%.0fs] + slack (%d rows, %d KiB, %d MiB RSS, %d goroutines, %d messages of lag); warm-up the first %.0f%%\n",
		half.Seconds(), loadEnd.Seconds(), growthBound, warm.Seconds(), half.Seconds(), slackRows, slackBytes>>10, slackRSSBytes>>20, slackGoroutines, lagSlack, warmUp*100)
	fmt.Fprintf(w, "%-40s %14s %14s %14s  %s\n", "series", "max warm→half", "max 2nd half", "bound", "")
	check := func(name string, slack int64, v func(sample) int64) {
		var ref, late int64
		for _, p := range s.samples {
			switch {
			case !p.loading || p.at <= warm:
			case p.at <= half:
				ref = max(ref, v(p))
			default:
				late = max(late, v(p))
			}
		}
		bound := int64(float64(ref)*growthBound) + slack
		verdict := "flat"
		if late > bound {
			verdict, flat = "GROWS", false
		}
		fmt.Fprintf(w, "%-40s %14d %14d %14d  %s\n", name, ref, late, bound, verdict)
	}
	for _, t := range s.tables {
		check("cdcd."+t+" rows", slackRows, func(p sample) int64 { return p.rows[t] })
		check("cdcd."+t+" bytes", slackBytes, func(p sample) int64 { return p.sizes[t] })
	}
	for _, c := range s.procs {
		check(c.name+" RSS bytes", slackRSSBytes, func(p sample) int64 { return p.rss[c.name] })
		check(c.name+" next GC bytes", slackRSSBytes, func(p sample) int64 { return p.nextGC[c.name] })
		check(c.name+" goroutines", slackGoroutines, func(p sample) int64 { return p.gor[c.name] })
	}
	if s.kafka != nil {
		check("consumer lag", lagSlack, func(p sample) int64 { return p.lag })
	}
	return flat
}
