package shopify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/sinks/vendorhttp"
)

// callLimitHeader reports the REST leaky bucket: "<used>/<size>".
const callLimitHeader = "X-Shopify-Shop-Api-Call-Limit"

// post sends body as JSON to the Admin API path (after /admin/api/<version>/)
// and returns the response body, or the classified error.
func (w *Writer) post(ctx context.Context, path string, body any, op string) ([]byte, error) {
	buf, err := json.Marshal(body)
	if err != nil {
		return nil, cdc.Permanent(err)
	}
	resp, _, err := w.call(ctx, http.MethodPost, path, buf, op)
	return resp, err
}

// call sends one request to the Admin API path once the shop's limiter
// admits it, and returns the response body and header, or the classified
// error. body nil sends none.
func (w *Writer) call(ctx context.Context, method, path string, body []byte, op string) ([]byte, http.Header, error) {
	if err := w.limit.Wait(ctx); err != nil {
		return nil, nil, err
	}
	asked := w.version()
	url := w.base + "/admin/api/" + asked + "/" + path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, nil, cdc.Permanent(vendorhttp.TransportError(op, err))
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Shopify-Access-Token", w.cfg.AccessToken)
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, nil, vendorhttp.TransportError(op, err)
	}
	defer resp.Body.Close()
	w.drainBucket(resp.Header.Get(callLimitHeader))
	w.servedVersion(asked, resp.Header.Get(versionHeader))
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if herr := w.statusError(resp.StatusCode, resp.Header, respBody, op); herr != nil {
		if d, ok := cdc.RetryAfterOf(herr); ok && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
			w.limit.Pause(d)
			w.log.Debug().Float64("retry_after_seconds", d.Seconds()).Msg("shopify rate limit reached")
		}
		return nil, nil, herr
	}
	if err != nil {
		return nil, nil, vendorhttp.TransportError(op, err)
	}
	return respBody, resp.Header, nil
}

// holdFor is how long a shop's calls wait after Shopify refused them for
// a state of the shop that only its owner can end: frozen (402, unpaid
// bill), locked (423), or a token it no longer accepts (401, rotated or
// the app uninstalled). The changes are held, not dead-lettered.
const holdFor = 5 * time.Minute

// statusError classifies an answer as vendorhttp.Classify does, but holds
// 401, 402 and 423 ("Shopify API response status and error codes",
// shopify.dev/docs/api/usage/response-codes).
func (w *Writer) statusError(status int, h http.Header, body []byte, op string) error {
	var what string
	switch status {
	case http.StatusUnauthorized:
		what = "Shopify refused the access token (rotated, or the app uninstalled): set a valid access_token"
	case http.StatusPaymentRequired:
		what = "the shop is frozen until its owner pays the outstanding balance"
	case http.StatusLocked:
		what = "the shop is locked"
	default:
		return vendorhttp.Classify(status, h, body, op)
	}
	w.limit.Pause(holdFor)
	return cdc.RetryAfter(fmt.Errorf("%s: HTTP %d: %s; changes wait and are retried every %s", op, status, what, holdFor), holdFor)
}

// drainBucket pauses the shop's limiter while the REST bucket is over
// four fifths full, until it has leaked back to that level at the
// configured rate: other apps of the shop share the bucket.
func (w *Writer) drainBucket(h string) {
	usedS, sizeS, ok := strings.Cut(h, "/")
	if !ok {
		return
	}
	used, err1 := strconv.Atoi(usedS)
	size, err2 := strconv.Atoi(sizeS)
	if err1 != nil || err2 != nil || size <= 0 {
		return
	}
	over := used - size*4/5
	if over <= 0 {
		return
	}
	perCall := w.cfg.Rate.Per / time.Duration(w.cfg.Rate.Requests)
	w.limit.Pause(time.Duration(over) * perCall)
}
