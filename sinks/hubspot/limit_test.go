package hubspot

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cdcd-dev/cdcd/ratelimit"
	fake "github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

// A burst of 300 records, written in small batches by two writers of one
// account from eight goroutines, never draws a 429: the shared limiter
// keeps the account within the double's real limit (scaled to 20 per 1 s).
func TestSharedLimiterKeepsBurstUnderTheLimit(t *testing.T) {
	t.Parallel()
	rate := ratelimit.Rate{Requests: 20, Per: time.Second}
	srv := start(t, fake.Options{Limit: rate.Requests, Window: rate.Per})
	limiters := ratelimit.NewLimiters()
	writers := []*Writer{
		newWriter(t, srv, limiters, func(c *Config) { c.Rate = rate; c.IDProperty = "email" }),
		newWriter(t, srv, limiters, func(c *Config) { c.Rate = rate }),
	}
	recs := contacts("burst", 300)
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(8)
	for i, batch := range slices.Collect(slices.Chunk(recs, 5)) {
		w := writers[i%2]
		g.Go(func() error {
			res, err := w.Write(ctx, batch)
			if err != nil {
				return err
			}
			for _, r := range res {
				if r.Err != nil {
					return r.Err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count429(); n != 0 {
		t.Fatalf("%d answers were 429", n)
	}
	if n := len(srv.Objects("contacts")); n != 300 {
		t.Fatalf("%d contacts, want 300", n)
	}
	// 60 calls at 20 per second take at least two full windows.
	reqs := srv.Requests()
	if span := reqs[len(reqs)-1].At.Sub(reqs[0].At); span < 2*time.Second {
		t.Fatalf("60 calls within %v: the limiter did not hold them", span)
	}
}

func TestAccountKeyHidesTheToken(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	c.Token = "pat-na1-secret"
	if got := c.account(); got == "" || strings.Contains(got, "secret") {
		t.Fatalf("account %q", got)
	}
	d := NewConfig()
	d.Token = "pat-na1-other"
	if c.account() == d.account() {
		t.Fatal("two tokens share an account key")
	}
	c.Account = "portal-123"
	if got := c.account(); got != "hubspot:portal-123" {
		t.Fatalf("account %q", got)
	}
}
