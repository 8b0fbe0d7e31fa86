package vendorhttp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/ratelimit"
)

func TestPostSendsJSONAndPausesTheAccountWhenThrottled(t *testing.T) {
	var got []string
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.Header.Get("Content-Type"))
		w.WriteHeader(status)
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	p := &Post{Client: srv.Client(), Limit: ratelimit.NewLimiter(ratelimit.Rate{Requests: 100, Per: time.Second}), URL: srv.URL + "/secret-token",
		Op: "post message", MaxAnswer: 16, Throttle: time.Minute}
	ctx := context.Background()
	if answer, err := p.Send(ctx, []byte(`{}`)); err != nil || string(answer) != "ok" {
		t.Fatalf("answer %q, %v", answer, err)
	}
	if len(got) != 1 || got[0] != "POST application/json" {
		t.Fatalf("requests %v", got)
	}

	status = http.StatusTooManyRequests // no Retry-After
	_, err := p.Send(ctx, []byte(`{}`))
	if d, ok := cdc.RetryAfterOf(err); !ok || d != time.Minute {
		t.Fatalf("a 429 without Retry-After: %v (retry after %v, %v), want the throttle pause", err, d, ok)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := p.Limit.Wait(short); err == nil {
		t.Fatal("the account's limiter is not paused after a 429")
	}

	p.URL = "http://127.0.0.1:1/secret-token" // nothing listens
	p.Limit = ratelimit.NewLimiter(ratelimit.Rate{Requests: 100, Per: time.Second})
	if _, err := p.Send(ctx, []byte(`{}`)); err == nil || strings.Contains(err.Error(), "secret-token") {
		t.Fatalf("transport error %v: want one without the URL", err)
	}
}
