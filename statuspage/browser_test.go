package statuspage

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"
)

// browser starts a headless Chromium for the test. Chromium is required:
// .ci/run installs Debian's package.
func browser(t *testing.T) context.Context {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed (apt-get install chromium); .ci/run installs it")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // tests run as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// PageState opens url in the browser with the bearer token and waits
// until the pipeline's row shows want, reloading as the page does; it
// saves a screenshot of the page as it last was, and returns its path.
func PageState(t *testing.T, ctx context.Context, url, token, pipeline, want string, timeout time.Duration) string {
	t.Helper()
	bearer := chromedp.Action[chromedp.Void](func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return chromedp.Void{}, err
		}
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Bearer " + token}})
		return chromedp.Void{}, err
	})
	if err := chromedp.Do(ctx, bearer); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	var got, overall string
	for {
		err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#overall")))
		if err == nil {
			got, err = chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector('tr[data-pipeline="`+pipeline+`"]') || {dataset: {}}).dataset.state || ""`))
		}
		if err == nil {
			overall, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#overall")))
		}
		if err != nil {
			t.Fatalf("load %s in chromium: %v", url, err)
		}
		if got == want || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond) // the page's own refresh is slower
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("CDCD_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "status-"+pipeline+"-"+got+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the status page (pipeline %s %s, cdcd %s): %s", pipeline, got, overall, path)
	if got != want {
		t.Fatalf("pipeline %s shows %q on the page after %s, want %q", pipeline, got, timeout, want)
	}
	return path
}

// The page loads in a real browser, with no external asset, and shows a
// pipeline whose sink started failing as degraded.
func TestPageInBrowser(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
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
	url := serve(t, New(Tokens{Read: "rd"}, m, nil, time.Second, zerolog.Nop()))
	PageState(t, ctx, url+"/", "rd", "p01", "degraded", 10*time.Second)
	svgs, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('svg polyline').length`))
	if err != nil {
		t.Fatal(err)
	}
	if svgs < 9 {
		t.Errorf("%d plots drawn, want 3 per pipeline", svgs)
	}
}
