package statuspage

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/statuspage/browsertest"
)

// The page loads in a real browser, with no external asset, and shows a
// pipeline whose sink started failing as degraded.
func TestPageInBrowser(t *testing.T) {
	t.Parallel()
	ctx := browsertest.Start(t)
	f := newFakeSinks()
	m := newMonitor(t, f, nil, 3)
	t0 := time.Now().Add(-10 * time.Minute)
	for s := 0; s <= 600; s += 5 {
		for _, p := range []string{"p00", "p01", "p02"} {
			if p == "p01" && s > 500 {
				f.fail(p)
			} else {
				f.deliver(p, 3)
			}
		}
		m.Evaluate(context.Background(), t0.Add(time.Duration(s)*time.Second))
	}
	// A minute between reloads: none between the checks below.
	url := serve(t, New(Tokens{Read: "rd"}, m, nil, time.Minute, zerolog.Nop()))
	browsertest.PipelineState(ctx, t, url+"/", "rd", "p01", "degraded", 10*time.Second)
	svgs, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('svg polyline').length`))
	if err != nil {
		t.Fatal(err)
	}
	if svgs < 9 {
		t.Errorf("%d plots drawn, want 3 per pipeline", svgs)
	}
}
