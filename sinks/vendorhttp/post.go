package vendorhttp

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/ratelimit"
)

// Post is one JSON POST to a vendor's endpoint that answers each call on
// its own (an incoming webhook, an events API).
type Post struct {
	Client *http.Client
	// Limit is the account's rate limiter: the call waits for it, and an
	// answer that says to slow down pauses it for every pipeline of the
	// account.
	Limit *ratelimit.Limiter
	URL   string
	// Op names the call in errors ("post slack message").
	Op string
	// MaxAnswer bounds the answer's body read.
	MaxAnswer int64
	// Throttle is the pause after a 429 without Retry-After; 0 leaves the
	// retry to the pipeline's backoff.
	Throttle time.Duration
}

// Send posts body once the limiter allows and returns the answer's body.
// A failed call is classified (Classify; a transport error without the
// URL, which may hold a secret); its Retry-After pauses the limiter.
func (p *Post) Send(ctx context.Context, body []byte) ([]byte, error) {
	if err := p.Limit.Wait(ctx); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(body))
	if err != nil {
		return nil, cdc.Permanent(TransportError(p.Op, err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.Client.Do(req)
	if err != nil {
		return nil, TransportError(p.Op, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, p.MaxAnswer))
	if err := Classify(resp.StatusCode, resp.Header, answer, p.Op); err != nil {
		d, ok := cdc.RetryAfterOf(err)
		if !ok && resp.StatusCode == http.StatusTooManyRequests && p.Throttle > 0 {
			d, ok, err = p.Throttle, true, cdc.RetryAfter(err, p.Throttle)
		}
		if ok {
			p.Limit.Pause(d)
		}
		return answer, err
	}
	return answer, nil
}
