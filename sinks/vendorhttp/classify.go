// Package vendorhttp is the HTTP plumbing the writers of vendor APIs
// share: a response classified as a delivery error (permanent, transient,
// or retry after the vendor's Retry-After), with the vendor's message and
// never a URL or header.
package vendorhttp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/internal/clip"
)

// maxMessage bounds the vendor text kept from an error body.
const maxMessage = 512

// Classify classifies a vendor's HTTP response for a Writer; op names the
// call ("create contacts"). It returns:
//   - nil for 2xx;
//   - cdc.RetryAfter for 429 and 503 with a Retry-After header (seconds or
//     an HTTP date);
//   - a transient error for 408, 409, 425, 429 and 5xx;
//   - cdc.Permanent for every other status, 4xx included.
//
// The error text is op, the status and the vendor's message: the first of
// the JSON fields message, error_description, error, errors[0] (or
// .message), detail, title — also inside a top-level array — else up to
// 512 bytes of the body as text. Request headers and URLs never appear.
//
// This is the default; a Writer checks the statuses its vendor gives a
// meaning before calling it: HubSpot's 409 "already exists" means link to
// the existing id and update it, Salesforce's 401 INVALID_SESSION_ID means
// refresh the token and retry once, its 403 REQUEST_LIMIT_EXCEEDED means
// back off for long (cdc.RetryAfter).
func Classify(status int, header http.Header, body []byte, op string) error {
	if status >= 200 && status < 300 {
		return nil
	}
	err := &statusError{op: op, status: status, msg: vendorMessage(body)}
	switch {
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		if d, ok := RetryAfter(header.Get("Retry-After"), time.Now()); ok {
			return cdc.RetryAfter(err, d)
		}
		return err
	case status == http.StatusRequestTimeout, status == http.StatusConflict,
		status == http.StatusTooEarly, status >= 500:
		return err
	}
	return cdc.Permanent(err)
}

type statusError struct {
	op     string
	status int
	msg    string
}

func (e *statusError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("%s: HTTP %d %s", e.op, e.status, http.StatusText(e.status))
	}
	return fmt.Sprintf("%s: HTTP %d: %s", e.op, e.status, e.msg)
}

// RetryAfter parses a Retry-After header value at now: delay-seconds
// (fractions allowed, capped at a year) or an HTTP date (a past date is
// 0). ok is false for an empty or malformed value, or negative seconds.
func RetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s < 0 || math.IsNaN(s) {
			return 0, false
		}
		return time.Duration(min(s, 366*24*3600) * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// vendorMessage extracts the vendor's error message from a response body.
func vendorMessage(body []byte) string {
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return ""
	}
	if b[0] == '{' || b[0] == '[' {
		var v any
		if json.Unmarshal(b, &v) == nil {
			if m := messageOf(v, 0); m != "" {
				return clip.Line(m, maxMessage)
			}
		}
	}
	return clip.Line(string(b), maxMessage)
}

var messageFields = []string{"message", "error_description", "error", "errors", "detail", "title"}

func messageOf(v any, depth int) string {
	if depth > 3 {
		return ""
	}
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x)
	case []any:
		if len(x) > 0 {
			return messageOf(x[0], depth+1)
		}
	case map[string]any:
		for _, k := range messageFields {
			if m := messageOf(x[k], depth+1); m != "" {
				return m
			}
		}
	}
	return ""
}
