// Package browsertest drives cdcd's status page in a real headless
// Chromium (Debian's package, through chromedp) for tests.
package browsertest

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
)

// Start starts a headless Chromium for the test. Chromium is required:
// .ci/run installs Debian's package.
func Start(t testing.TB) context.Context {
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
		chromedp.WindowSize(1400, 900),
	}
	// Chromium now and then exits as it starts on a busy machine, before
	// it serves DevTools ("chrome failed to start"): that is tried again,
	// with a new profile, not taken for a failure of the page.
	for attempt := 1; attempt <= 3; attempt++ {
		opts := append(opts[:len(opts):len(opts)], chromedp.UserDataDir(t.TempDir()))
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(actx)
		ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
		if err = chromedp.Do(ctx); err == nil {
			t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
			return ctx
		}
		cancelTimeout()
		cancel()
		cancelAlloc()
		t.Logf("start chromium, attempt %d: %v", attempt, err)
	}
	t.Fatalf("start chromium: %v", err)
	return nil
}

// PipelineState opens url in the browser with the bearer token and waits
// until the pipeline's row shows want, reloading as the page does; it
// saves a screenshot of the page as it last was (in $CDCD_SCREENSHOTS, or
// a temporary directory), logs and returns its path.
func PipelineState(ctx context.Context, t testing.TB, url, token, pipeline, want string, timeout time.Duration) string {
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
