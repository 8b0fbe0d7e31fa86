package vendorhttp

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestTransportErrorHidesTheURL(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://hooks.example.com/services/T0/B0/s3cret", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = http.DefaultClient.Do(req)
	got := TransportError("post message", err)
	if strings.Contains(got.Error(), "s3cret") || !strings.HasPrefix(got.Error(), "post message: ") {
		t.Errorf("TransportError = %q, want the op and no URL", got)
	}
	if !errors.Is(got, context.Canceled) {
		t.Errorf("TransportError = %v, lost the cause", got)
	}
}
