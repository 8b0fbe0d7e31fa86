package hubspot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/sinks/vendorhttp"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// ErrOutcomeUnknown is wrapped by the error of a call that may or may not
// have been applied: the connection failed or timed out after the request
// was sent, or the answer left the input unclear. It is
// syncapi.ErrOutcomeUnknown.
var ErrOutcomeUnknown = syncapi.ErrOutcomeUnknown

// errorBody is the part of HubSpot's error shape that vendorhttp.Classify
// does not read; every field is optional.
type errorBody struct {
	CorrelationID string `json:"correlationId"`
	PolicyName    string `json:"policyName"`
}

// Pauses after a 429, by policy, when HubSpot sends no Retry-After.
const (
	pauseTenSecondly = 10 * time.Second
	pauseSecondly    = time.Second
	// pauseDaily re-probes hourly: the daily budget resets at midnight in
	// the account's time zone, which the API does not report.
	pauseDaily = time.Hour
)

// post sends one request, named op in errors ("batch create contacts"),
// after the account's limiter admits it, decodes a 2xx body into out, and
// returns the status (0 when no answer came).
// Errors are classified: cdc.RetryAfter for 429 (the limiter is paused for
// everyone on the account), cdc.Permanent for what retrying cannot fix,
// transient otherwise; failures after the request left wrap
// ErrOutcomeUnknown.
func (w *Writer) post(ctx context.Context, op, path string, in, out any) (int, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return 0, cdc.Permanent(fmt.Errorf("%s: encode: %w", op, err))
	}
	return w.call(ctx, http.MethodPost, op, path, b, out)
}

// call is post's request with any method; body may be nil.
func (w *Writer) call(ctx context.Context, method, op, path string, body []byte, out any) (int, error) {
	if err := w.limiter.Wait(ctx); err != nil {
		return 0, fmt.Errorf("%s: wait for the rate limit: %w", op, err)
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.base+path, rd)
	if err != nil {
		return 0, cdc.Permanent(fmt.Errorf("%s: %w", op, err))
	}
	req.Header.Set("Authorization", "Bearer "+w.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s: %w: %w", op, ErrOutcomeUnknown, vendorhttp.WithoutURL(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	w.log.Debug().Str("op", op).Int("status", resp.StatusCode).Float64("took_seconds", time.Since(start).Seconds()).Msg("hubspot call")
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s: read answer: %w: %w", op, ErrOutcomeUnknown, vendorhttp.WithoutURL(err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, w.classify(op, resp, raw)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s: decode answer: %w: %w", op, ErrOutcomeUnknown, err)
		}
	}
	return resp.StatusCode, nil
}

// classify is vendorhttp.Classify with HubSpot's meanings: a 429 pauses
// the account's limiter and asks for a retry after the pause, 401 and 403
// say what to fix, and the correlation id is kept for HubSpot's support.
func (w *Writer) classify(op string, resp *http.Response, raw []byte) error {
	var b errorBody
	_ = json.Unmarshal(raw, &b) // a body that is not HubSpot's shape still has a status
	err := vendorhttp.Classify(resp.StatusCode, resp.Header, raw, op)
	if b.CorrelationID != "" {
		err = fmt.Errorf("%w (correlation id %s)", err, b.CorrelationID)
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		d := pauseFor(resp.Header, b.PolicyName, time.Now())
		w.limiter.Pause(d)
		return cdc.RetryAfter(err, d)
	case http.StatusUnauthorized:
		return cdc.Permanent(fmt.Errorf("%w; check the system's token (a private app access token)", err))
	case http.StatusForbidden:
		return cdc.Permanent(fmt.Errorf("%w; grant the private app the object's read and write scopes", err))
	}
	return err
}

// pauseFor is how long to hold the account after a 429 at now: Retry-After
// when sent (seconds or an HTTP date), else by the policy; a ten-secondly pause lasts the window HubSpot
// reports in X-HubSpot-RateLimit-Interval-Milliseconds, unless HubSpot
// reports calls remaining in it (X-HubSpot-RateLimit-Remaining): the
// window did not refuse the call, so the pause is a second's.
func pauseFor(h http.Header, policy string, now time.Time) time.Duration {
	if d, ok := vendorhttp.RetryAfter(h.Get("Retry-After"), now); ok && d > 0 {
		return d
	}
	switch policy {
	case "DAILY":
		return pauseDaily
	case "SECONDLY":
		return pauseSecondly
	}
	if n, err := strconv.Atoi(h.Get("X-HubSpot-RateLimit-Remaining")); err == nil && n > 0 {
		return pauseSecondly
	}
	if ms, err := strconv.Atoi(h.Get("X-HubSpot-RateLimit-Interval-Milliseconds")); err == nil && ms > 0 {
		return time.Duration(ms) * time.Millisecond
	}
	return pauseTenSecondly
}
