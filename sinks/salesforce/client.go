package salesforce

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/cdcd-dev/cdcd/sinks/vendorhttp"
)

// maxResponse bounds the response bytes read.
const maxResponse = 8 << 20

// send performs one HTTP request once the account's limiter admits it. A
// transport failure or timeout is a transient error that names neither the
// URL nor the body (they hold record values).
func (w *Writer) send(ctx context.Context, method, target, contentType string, body []byte, token, accept string, limit int64) (int, http.Header, []byte, error) {
	if err := w.limiter.Wait(ctx); err != nil {
		return 0, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("Sforce-Call-Options", "client="+w.cfg.ClientID)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, nil, nil, vendorhttp.TransportError(method+" "+req.URL.Host, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s %s: read response: %w", method, req.URL.Host, err)
	}
	return resp.StatusCode, resp.Header, data, nil
}

// call performs an API call on path, relative to /services/data/<version>.
// A 401 drops the session, and the call is made once more with a new one.
// Only transport failures are errors; the caller classifies statuses.
func (w *Writer) call(ctx context.Context, method, path string, body []byte) (int, http.Header, []byte, error) {
	return w.callAccept(ctx, method, path, "application/json", body, maxResponse)
}

// callAccept is call asking for the accept media type, reading up to
// limit+1 bytes of the response (more than limit: it was cut).
func (w *Writer) callAccept(ctx context.Context, method, path, accept string, body []byte, limit int64) (int, http.Header, []byte, error) {
	for attempt := 0; ; attempt++ {
		s, err := w.tokens.get(ctx)
		if err != nil {
			return 0, nil, nil, err
		}
		target := s.instance + "/services/data/" + w.cfg.APIVersion + path
		status, h, resp, err := w.send(ctx, method, target, "application/json", body, s.token, accept, limit)
		if err != nil {
			return 0, nil, nil, err
		}
		if status == http.StatusUnauthorized && attempt == 0 {
			w.tokens.invalidate(s)
			continue
		}
		return status, h, resp, nil
	}
}
