package vendorhttp

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	type class int
	const (
		ok class = iota
		transient
		permanent
		retryAfter
	)
	retryIn := func(v string) http.Header { return http.Header{"Retry-After": {v}} }
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		want   class
		after  time.Duration
		text   string
	}{
		{name: "200", status: 200, want: ok},
		{name: "207 is success for the call", status: 207, want: ok},
		{name: "hubspot validation", status: 400, body: `{"status":"error","message":"Property values were not valid","correlationId":"x","errors":[{"message":"email"}]}`,
			want: permanent, text: "upsert contacts: HTTP 400: Property values were not valid"},
		{name: "salesforce array", status: 400, body: `[{"message":"Email: invalid email address","errorCode":"INVALID_EMAIL_ADDRESS"}]`,
			want: permanent, text: "upsert contacts: HTTP 400: Email: invalid email address"},
		{name: "errors[0] string", status: 400, body: `{"status":"invalid event","errors":["Length of 'routing_key' is incorrect"]}`,
			want: permanent, text: "upsert contacts: HTTP 400: Length of 'routing_key' is incorrect"},
		{name: "oauth", status: 401, body: `{"error":"invalid_grant","error_description":"expired"}`, want: permanent, text: "upsert contacts: HTTP 401: expired"},
		{name: "nested error object", status: 403, body: `{"error":{"code":7,"message":"forbidden here"}}`, want: permanent, text: "upsert contacts: HTTP 403: forbidden here"},
		{name: "slack text", status: 404, body: "channel_not_found\n", want: permanent, text: "upsert contacts: HTTP 404: channel_not_found"},
		{name: "no body", status: 410, want: permanent, text: "upsert contacts: HTTP 410 Gone"},
		{name: "408", status: 408, want: transient},
		{name: "409 by default", status: 409, want: transient},
		{name: "425", status: 425, want: transient},
		{name: "429 without header", status: 429, want: transient},
		{name: "429 seconds", status: 429, header: retryIn("7"), want: retryAfter, after: 7 * time.Second},
		{name: "503 date", status: 503, header: retryIn(time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)), want: retryAfter, after: time.Hour},
		{name: "503 past date", status: 503, header: retryIn("Mon, 02 Jan 2006 15:04:05 GMT"), want: retryAfter, after: 0},
		{name: "503 garbage header", status: 503, header: retryIn("soon"), want: transient},
		{name: "500 html", status: 500, body: "<html>oops</html>", want: transient, text: "upsert contacts: HTTP 500: <html>oops</html>"},
		{name: "502", status: 502, want: transient},
	}
	for _, tt := range tests {
		err := Classify(tt.status, tt.header, []byte(tt.body), "upsert contacts")
		var got class
		after, hasAfter := cdc.RetryAfterOf(err)
		switch {
		case err == nil:
			got = ok
		case cdc.IsPermanent(err):
			got = permanent
		case hasAfter:
			got = retryAfter
		default:
			got = transient
		}
		if got != tt.want {
			t.Errorf("%s: class %d, want %d (%v)", tt.name, got, tt.want, err)
			continue
		}
		if tt.want == retryAfter && (after > tt.after || after < tt.after-2*time.Second) {
			t.Errorf("%s: retry after %v, want about %v", tt.name, after, tt.after)
		}
		if tt.text != "" && err.Error() != tt.text {
			t.Errorf("%s: text %q, want %q", tt.name, err.Error(), tt.text)
		}
	}
}

func TestClassifyBoundsTheMessage(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("é", 1000) // 2000 bytes
	msg := Classify(400, nil, []byte(body), "op").Error()
	if len(msg) > len("op: HTTP 400: ")+maxMessage+len("…") || !strings.HasSuffix(msg, "…") {
		t.Errorf("message of %d bytes: %q", len(msg), msg)
	}
	if !strings.HasPrefix(msg, "op: HTTP 400: éé") || strings.ContainsRune(msg, '\uFFFD') {
		t.Errorf("message cut inside a character: %q", msg[:40])
	}
}

func FuzzRetryAfter(f *testing.F) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, seed := range []string{"7", "0", " 120 ", "1.5", "-1", "NaN", "Inf", "1e400", "",
		"Sun, 01 Mar 2026 12:00:30 GMT", "Sunday, 01-Mar-26 11:00:00 GMT", "Sun Mar  1 12:01:00 2026", "soon"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := RetryAfter(v, now)
		if !ok {
			if d != 0 {
				t.Fatalf("RetryAfter(%q) = %v, false: a refused value must give 0", v, d)
			}
			return
		}
		if d < 0 {
			t.Fatalf("RetryAfter(%q) = %v, negative", v, d)
		}
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 && n < 1e6 && d != time.Duration(n)*time.Second {
			t.Fatalf("RetryAfter(%q) = %v, want %ds", v, d, n)
		}
		if at, err := http.ParseTime(strings.TrimSpace(v)); err == nil && at.After(now) && d != at.Sub(now) {
			t.Fatalf("RetryAfter(%q) = %v, want %v", v, d, at.Sub(now))
		}
	})
}
