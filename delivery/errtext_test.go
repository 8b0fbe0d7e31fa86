package delivery

import (
	"errors"
	"testing"
)

func TestErrorTextRedactsURLs(t *testing.T) {
	t.Parallel()
	err := errors.New(`Post "https://user:s3cret@api.example.com/v1/contacts?hapikey=abc123&x=1": dial tcp: i/o timeout`)
	got := errorText(err)
	want := `Post "https://api.example.com/v1/contacts?redacted": dial tcp: i/o timeout`
	if got != want {
		t.Errorf("errorText = %q, want %q", got, want)
	}
}
