package hubspot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/syncapi"
	fake "github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

// BenchmarkHubSpotThroughput writes batches of 100 contacts through one
// writer to the double with HubSpot's real limit, 100 requests per rolling
// 10 s, for four windows (about 30 s), and reports:
//
//   - records/s: the sustained rate, 100 calls of 100 records per mean
//     interval between a call and the 100th after it; the ceiling is
//     1,000/s.
//   - pct_of_ceiling: that rate against 1,000/s.
//   - 429s_after_first_window: 429 answers after the first 10 s.
//
// A write refused with 429 is retried after the pause, as the delivery
// layer does, so a 429 shows in the rate as a lost window. Run it alone: go test -run '^$' -bench HubSpotThroughput -benchtime 1x ./sinks/hubspot
func BenchmarkHubSpotThroughput(b *testing.B) {
	const (
		limit   = 100
		window  = 10 * time.Second
		batch   = 100
		windows = 4
		workers = 4 // concurrent Writes
	)
	srv := start(b, fake.Options{Limit: limit, Window: window})
	c := NewConfig()
	c.BaseURL, c.Token, c.Object, c.IDProperty = srv.URL(), testToken, "contacts", "email"
	c.Rate = ratelimit.Rate{Requests: limit, Per: window}
	w, err := New("crm", c, zerolog.Nop(), nil)
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64 // batches handed out
	total := int64(limit * windows)
	b.ResetTimer()
	g, ctx := errgroup.WithContext(context.Background())
	for range workers {
		g.Go(func() error {
			for n := next.Add(1); n <= total; n = next.Add(1) {
				recs := contacts(fmt.Sprintf("bench%d-", n), batch)
				for {
					res, err := w.Write(ctx, recs)
					if _, ok := cdc.RetryAfterOf(err); ok {
						continue // the limiter holds the retry for the pause
					}
					if err != nil {
						return err
					}
					if err := errors.Join(results(res)...); err != nil {
						return err
					}
					break
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()

	all := srv.Requests()
	slices.SortFunc(all, func(a, b fake.Request) int { return a.At.Compare(b.At) })
	first := all[0].At
	var reqs []fake.Request // the calls that were applied
	late429 := 0
	for _, r := range all {
		switch {
		case r.Status != 429:
			reqs = append(reqs, r)
		case r.At.Sub(first) > window:
			late429++
		}
	}
	last := reqs[len(reqs)-1].At
	// The rolling limit makes calls come in bursts of limit; the sustained
	// period is the mean time between a call and the one limit calls later.
	var period time.Duration
	for i := range len(reqs) - limit {
		period += reqs[i+limit].At.Sub(reqs[i].At)
	}
	period /= time.Duration(len(reqs) - limit)
	elapsed := last.Sub(first)
	records := len(reqs) * batch
	sustained := float64(limit*batch) / period.Seconds()
	b.ReportMetric(sustained, "records/s")
	b.ReportMetric(100*sustained/(float64(limit*batch)/window.Seconds()), "pct_of_ceiling")
	b.ReportMetric(float64(late429), "429s_after_first_window")
	b.ReportMetric(float64(srv.Count429()), "429s_total")
	b.Logf("%d calls, %d records, %v from first to last call; %d calls every %v: sustained %.0f records/s; first to last call %.0f records/s; 429s: %d total, %d after the first window",
		len(reqs), records, elapsed.Round(time.Millisecond), limit, period.Round(time.Millisecond), sustained,
		float64(records-limit*batch)/elapsed.Seconds(), srv.Count429(), late429)
}

func results(res []syncapi.Result) []error {
	errs := make([]error, len(res))
	for i, r := range res {
		errs[i] = r.Err
	}
	return errs
}
